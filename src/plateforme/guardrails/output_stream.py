"""Output guardrails on a stream: the answer checked as it is generated, never sent past a block.

Deltas carrying text are held back until the answer so far has been checked: every
OUTPUT_WINDOW_CHARS new characters (and once more at the end, before the usage), the last
TAIL_CHARS characters of each choice are scored. A check that blocks raises GuardrailBlocked: the
held deltas are dropped, the engine's stream is closed (its generation stops, what it made is
billed) and the caller ends the stream with an error event. Pieces with no text (the role, tool
calls) pass at once when nothing is held. The cost: the client sees text in windows (at most
OUTPUT_WINDOW_CHARS late, plus one moderation call), and one moderation call per window.
"""

from collections.abc import AsyncIterator, Awaitable, Callable

from plateforme.chat.types import Delta, Usage
from plateforme.pipeline.guards import RequestRefused

OUTPUT_WINDOW_CHARS = 96
TAIL_CHARS = 2000


def _tails(texts: dict[int, list[str]]) -> list[str]:
    return ["".join(texts[index])[-TAIL_CHARS:] for index in sorted(texts)]


async def _checked(check: Callable[[list[str]], Awaitable[None]], texts: dict[int, list[str]]) -> None:
    try:
        await check(_tails(texts))
    except RequestRefused as exc:  # the trace keeps what was withheld
        exc.answer = ["".join(texts[index]) for index in sorted(texts)]
        raise


async def watch_output(events: AsyncIterator[Delta | Usage],
                       check: Callable[[list[str]], Awaitable[None]]) -> AsyncIterator[Delta | Usage]:
    """`events` passed through once `check` (one text per choice: the answer so far) let them."""
    held: list[Delta] = []
    texts: dict[int, list[str]] = {}
    fresh = 0  # characters not checked yet
    try:
        async for item in events:
            if isinstance(item, Usage):
                if fresh:
                    await _checked(check, texts)
                for delta in held:
                    yield delta
                held.clear()
                yield item
                continue
            text = (item.thinking or "") + (item.content or "")
            if text:
                texts.setdefault(item.index, []).append(text)
                fresh += len(text)
            elif not held and item.finish_reason is None:
                yield item
                continue
            held.append(item)
            if fresh >= OUTPUT_WINDOW_CHARS:
                await _checked(check, texts)
                fresh = 0
                for delta in held:
                    yield delta
                held.clear()
    finally:
        await events.aclose()
