"""Chat requests and results in the platform's own terms, independent of any wire format."""

from dataclasses import dataclass, field


@dataclass
class ChatRequest:
    model: str
    # OpenAI-protocol messages: {"role", "content": str, "tool_calls"?, "tool_call_id"?, "name"?}
    messages: list[dict]
    max_tokens: int | None = None
    min_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    stop: list[str] = field(default_factory=list)
    seed: int | None = None
    n: int = 1
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    # [{"type": "function", "function": {"name", "description", "parameters"}}]
    tools: list[dict] | None = None
    # "auto" | "none" | "any" | {"type": "function", "function": {"name": ...}}
    tool_choice: str | dict = "auto"
    parallel_tool_calls: bool = True
    # JSON schema the answer must follow; {} means any JSON object (JSON mode).
    json_schema: dict | None = None
    # The last message is an assistant message the answer continues (Mistral's `prefix`).
    prefix: bool = False
    logprobs: bool = False
    top_logprobs: int | None = None
    # Predicted output (Mistral's `prediction.content`): a latency hint that never changes the
    # answer; engines that speculate use it to draft tokens (chat/prediction.py).
    prediction: str | None = None
    # For reasoning models (Mistral's values: none, minimal, low, medium, high, xhigh).
    reasoning_effort: str | None = None
    # Mistral's `prompt_mode` ("reasoning": the reasoning system prompt of a reasoning model).
    prompt_mode: str | None = None
    # Whether the model reasons: its thinking is returned apart from the answer. Set once the
    # model is known (chat/reasoning.py: with_reasoning), never by the caller.
    reasoning: bool = False
    # The workspace asking: admission shares the model fairly between workspaces.
    tenant: str | None = None
    # The request's guardrails (guardrails.config.GuardrailRule), checked by the request pipeline.
    guardrails: list | None = None


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
    content: str | None
    finish_reason: str
    tool_calls: list[dict] = field(default_factory=list)
    logprobs: list[dict] | None = None
    # A reasoning model's thinking, apart from the answer (`content`); None when it wrote none.
    thinking: str | None = None


@dataclass
class Completion:
    choices: list[Choice]
    usage: Usage


@dataclass
class Delta:
    """One piece of a streamed choice; `finish_reason` is set on its last piece only. `thinking`:
    a piece of a reasoning model's thinking (a delta carries thinking or content, not both)."""

    index: int
    content: str | None = None
    role: str | None = None
    finish_reason: str | None = None
    tool_calls: list[dict] | None = None
    logprobs: list[dict] | None = None
    thinking: str | None = None
