"""Chat requests and results in the platform's own terms, independent of any wire format."""

from dataclasses import dataclass, field


@dataclass
class ChatRequest:
    model: str
    # OpenAI-protocol messages: {"role": ..., "content": str, ...}
    messages: list[dict]
    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    stop: list[str] = field(default_factory=list)
    seed: int | None = None
    n: int = 1
    presence_penalty: float | None = None
    frequency_penalty: float | None = None


@dataclass
class Usage:
    prompt_tokens: int
    completion_tokens: int

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass
class Choice:
    index: int
    content: str
    finish_reason: str


@dataclass
class Completion:
    choices: list[Choice]
    usage: Usage


@dataclass
class Delta:
    """One piece of a streamed choice; `finish_reason` is set on its last piece only."""

    index: int
    content: str | None = None
    role: str | None = None
    finish_reason: str | None = None
