"""Split a reasoning model's generated text into its thinking and its answer, as it streams.

Reasoning models write their thinking between markers before (or between) parts of the answer:
`<think>...</think>` (DeepSeek-R1, Qwen3, SmolLM3...) or Magistral's `[THINK]...[/THINK]`.
Mistral's API returns that thinking apart from the answer, as `thinking` content chunks. The
splitter takes the text piece by piece as the engine writes it and gives back ("thinking" |
"text", piece) parts at once; it only ever holds back a tail that could still be the start of a
marker (at most a marker's length minus one), so streaming is never delayed beyond that.
"""

from typing import Literal

Part = tuple[Literal["thinking", "text"], str]

# (opening, closing) markers; the closing one that ends a block is the one its opening pairs with.
MARKERS: tuple[tuple[str, str], ...] = (("<think>", "</think>"), ("[THINK]", "[/THINK]"))


def _held_tail(text: str, markers: list[str]) -> int:
    """Length of the longest end of `text` that is a proper beginning of one of `markers`."""
    longest = 0
    for marker in markers:
        for size in range(min(len(marker) - 1, len(text)), longest, -1):
            if marker.startswith(text[-size:]):
                longest = size
                break
    return longest


class ThinkingSplitter:
    """Incremental: `feed(piece)` as text arrives, `finish()` once the generation has ended."""

    def __init__(self) -> None:
        self._pending = ""
        self._closing: str | None = None  # set while inside a thinking block
        self._strip_answer_start = False  # whitespace right after a closing marker is layout, not answer

    @property
    def thinking(self) -> bool:
        """Whether the text fed so far ends inside a thinking block."""
        return self._closing is not None

    def feed(self, piece: str) -> list[Part]:
        parts: list[Part] = []
        text = self._pending + piece
        self._pending = ""
        while text:
            if self._closing is not None:
                at = text.find(self._closing)
                if at < 0:
                    keep = _held_tail(text, [self._closing])
                    self._emit(parts, "thinking", text[:len(text) - keep])
                    self._pending = text[len(text) - keep:]
                    return parts
                self._emit(parts, "thinking", text[:at])
                text = text[at + len(self._closing):]
                self._closing = None
                self._strip_answer_start = True
                continue
            found = [(text.find(opening), opening, closing) for opening, closing in MARKERS]
            found = [f for f in found if f[0] >= 0]
            if not found:
                keep = _held_tail(text, [opening for opening, _ in MARKERS])
                self._emit(parts, "text", text[:len(text) - keep])
                self._pending = text[len(text) - keep:]
                return parts
            at, opening, closing = min(found)
            self._emit(parts, "text", text[:at])
            text = text[at + len(opening):]
            self._closing = closing
        return parts

    def finish(self) -> list[Part]:
        """What is still held: a would-be marker that never completed is plain text (or thinking,
        inside an unclosed block: a generation cut by max_tokens while thinking)."""
        parts: list[Part] = []
        held, self._pending = self._pending, ""
        self._emit(parts, "thinking" if self._closing is not None else "text", held)
        return parts

    def _emit(self, parts: list[Part], kind: str, text: str) -> None:
        if kind == "text" and self._strip_answer_start:
            text = text.lstrip()
            if text:
                self._strip_answer_start = False
        if not text:
            return
        if parts and parts[-1][0] == kind:
            parts[-1] = (kind, parts[-1][1] + text)
        else:
            parts.append((kind, text))

