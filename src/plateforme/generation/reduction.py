"""Deltas of a generation reduced to its whole answer: one Choice per index, and the Usage."""

from collections.abc import AsyncIterator

from plateforme.chat.types import Choice, Completion, Delta, Usage


class ChoiceReduction:
    """The pieces of one choice, put together as they come."""

    def __init__(self, index: int):
        self.index = index
        self.content, self.thinking, self.finish = "", "", "stop"
        self.tool_calls: list[dict] = []
        self.logprobs: list[dict] = []

    def add(self, delta: Delta) -> None:
        self.content += delta.content or ""
        self.thinking += delta.thinking or ""
        self.tool_calls += delta.tool_calls or []
        self.logprobs += delta.logprobs or []
        self.finish = delta.finish_reason or self.finish

    def choice(self, with_logprobs: bool) -> Choice:
        # Mistral's API sends `"content": ""` beside tool calls, never no content at all.
        return Choice(self.index, self.content, self.finish, self.tool_calls,
                      self.logprobs if with_logprobs else None, self.thinking or None)


async def reduce_stream(events: AsyncIterator[Delta | Usage], n: int, with_logprobs: bool) -> Completion:
    """The Completion of a stream of `n` choices' deltas ending with one Usage."""
    choices = [ChoiceReduction(i) for i in range(n)]
    usage = Usage(0, 0)
    async for item in events:
        if isinstance(item, Usage):
            usage = item
        else:
            choices[item.index].add(item)
    return Completion([c.choice(with_logprobs) for c in choices], usage)
