"""A choice's engine pieces as deltas, a reasoning model's thinking apart from its answer.

The engine's text goes through as `content`, except:
- `reasoning_content` (what vLLM, llama.cpp with a reasoning format, SGLang... stream as the
  model's thinking) becomes thinking deltas, whatever the model;
- for a reasoning model, thinking written inline between markers (`<think>...</think>`,
  `[THINK]...[/THINK]`) is split out of the content as it streams (chat/thinking.py).
"""

from plateforme.chat.thinking import ThinkingSplitter
from plateforme.chat.types import Delta


def reasoning_of(delta: dict) -> str | None:
    """The thinking an OpenAI-protocol delta carries: `reasoning_content` (vLLM, llama.cpp,
    SGLang, DeepSeek) or `reasoning` (newer vLLM, OpenRouter)."""
    for key in ("reasoning_content", "reasoning"):
        value = delta.get(key)
        if isinstance(value, str) and value:
            return value
    return None


class AnswerParts:
    def __init__(self, index: int, reasoning: bool):
        self.index = index
        self.splitter = ThinkingSplitter() if reasoning else None

    def deltas(self, content: str, reasoning_content: str | None = None,
               logprobs: list[dict] | None = None) -> list[Delta]:
        """The deltas of one engine piece (logprobs ride on the last; an empty content delta
        carries them when every character is held back)."""
        out: list[Delta] = []
        if reasoning_content:
            out.append(Delta(self.index, thinking=reasoning_content))
        if content:
            if self.splitter is None:
                out.append(Delta(self.index, content=content))
            else:
                out.extend(self._delta(kind, text) for kind, text in self.splitter.feed(content))
        if logprobs:
            if out:
                out[-1].logprobs = logprobs
            else:
                out.append(Delta(self.index, content="", logprobs=logprobs))
        return out

    def finish(self) -> list[Delta]:
        """What the splitter still held when the engine stopped."""
        if self.splitter is None:
            return []
        return [self._delta(kind, text) for kind, text in self.splitter.finish()]

    def _delta(self, kind: str, text: str) -> Delta:
        return Delta(self.index, thinking=text) if kind == "thinking" else Delta(self.index, content=text)


def split_answer(text: str, reasoning: bool) -> tuple[str, str]:
    """(thinking, answer) of a whole text written by the model."""
    parts = AnswerParts(0, reasoning)
    deltas = parts.deltas(text) + parts.finish()
    return ("".join(d.thinking or "" for d in deltas), "".join(d.content or "" for d in deltas))
