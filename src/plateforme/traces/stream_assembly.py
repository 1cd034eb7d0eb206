"""Rebuild the final choices of a streamed chat completion from its deltas, cheaply per delta."""

from plateforme.chat.types import Choice, Delta


class _Parts:
    __slots__ = ("finish_reason", "text", "thinking", "tool_calls")

    def __init__(self):
        self.text: list[str] = []
        self.thinking: list[str] = []
        self.tool_calls: list[dict] = []
        self.finish_reason = "stop"


class StreamAssembler:
    def __init__(self):
        self._choices: dict[int, _Parts] = {}

    def add(self, delta: Delta) -> None:
        parts = self._choices.get(delta.index)
        if parts is None:
            parts = self._choices[delta.index] = _Parts()
        if delta.content:
            parts.text.append(delta.content)
        if delta.thinking:
            parts.thinking.append(delta.thinking)
        if delta.tool_calls:
            parts.tool_calls.extend(delta.tool_calls)
        if delta.finish_reason is not None:
            parts.finish_reason = delta.finish_reason

    def choices(self) -> list[Choice]:
        """The choices as a non-streaming answer has them (content None when only tool calls)."""
        out = []
        for index in sorted(self._choices):
            parts = self._choices[index]
            content = "".join(parts.text)
            out.append(Choice(index, content or (None if parts.tool_calls else ""), parts.finish_reason,
                              parts.tool_calls, thinking="".join(parts.thinking) or None))
        return out
