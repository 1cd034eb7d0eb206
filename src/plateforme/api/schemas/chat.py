"""Chat completion request and response, as in Mistral's spec (ChatCompletionRequest, ...)."""

from typing import Annotated, Any, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field

from plateforme.chat.types import ChatRequest


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TextChunk(Strict):
    type: Literal["text"] = "text"
    text: str


Content = str | list[TextChunk]


def _text(content: Content | None) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    return "".join(chunk.text for chunk in content)


class SystemMessage(Strict):
    role: Literal["system"]
    content: Content


class UserMessage(Strict):
    role: Literal["user"]
    content: Content | None


class AssistantMessage(Strict):
    role: Literal["assistant"]
    content: Content | None = None


class ToolMessage(Strict):
    role: Literal["tool"]
    content: Content | None
    tool_call_id: str | None = None
    name: str | None = None


Message = Annotated[
    SystemMessage | UserMessage | AssistantMessage | ToolMessage, Field(discriminator="role")
]

# Fields of Mistral's spec this server does not implement yet: accepted by the schema so that a
# request using them gets a 400 naming the field, not a generic unknown-field 422.
UNSUPPORTED_FIELDS = (
    "response_format", "tools", "tool_choice", "prediction", "reasoning_effort",
    "prompt_mode", "guardrails", "service_tier",
)


class StreamOptions(Strict):
    """openai SDK compatibility: usage is always sent on the last chunk, so this changes nothing."""
    include_usage: bool | None = None
    include_obfuscation: bool | None = None


class ChatCompletionRequest(Strict):
    model: str
    messages: list[Message] = Field(min_length=1)
    temperature: float | None = Field(default=None, ge=0, le=1.5)
    top_p: float | None = Field(default=None, gt=0, le=1)
    # `max_completion_tokens` is the openai SDK's name for it.
    max_tokens: int | None = Field(
        default=None, ge=1, validation_alias=AliasChoices("max_tokens", "max_completion_tokens")
    )
    stream: bool = False
    stream_options: StreamOptions | None = None
    stop: str | list[str] | None = None
    # `seed` is the openai SDK's name for it.
    random_seed: int | None = Field(
        default=None, ge=0, validation_alias=AliasChoices("random_seed", "seed")
    )
    presence_penalty: float | None = Field(default=None, ge=-2, le=2)
    frequency_penalty: float | None = Field(default=None, ge=-2, le=2)
    n: int | None = Field(default=None, ge=1, le=16)
    metadata: dict[str, Any] | None = None
    prompt_cache_key: str | None = None
    parallel_tool_calls: bool = True
    safe_prompt: bool = False
    response_format: Any = None
    tools: Any = None
    tool_choice: Any = None
    prediction: Any = None
    reasoning_effort: Any = None
    prompt_mode: Any = None
    guardrails: Any = None
    service_tier: Any = None

    def unsupported_fields(self) -> list[str]:
        used = [name for name in UNSUPPORTED_FIELDS if getattr(self, name) is not None]
        if self.safe_prompt:
            used.append("safe_prompt")
        return used

    def to_chat_request(self) -> ChatRequest:
        messages = []
        for message in self.messages:
            out = {"role": message.role, "content": _text(message.content)}
            if isinstance(message, ToolMessage) and message.tool_call_id:
                out["tool_call_id"] = message.tool_call_id
            messages.append(out)
        stop = [self.stop] if isinstance(self.stop, str) else list(self.stop or [])
        return ChatRequest(
            model=self.model, messages=messages, max_tokens=self.max_tokens,
            temperature=self.temperature, top_p=self.top_p, stop=stop, seed=self.random_seed,
            n=self.n or 1, presence_penalty=self.presence_penalty,
            frequency_penalty=self.frequency_penalty,
        )


class UsageInfo(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class AssistantMessageOut(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str
    tool_calls: None = None


class ChatCompletionChoice(BaseModel):
    index: int
    message: AssistantMessageOut
    finish_reason: Literal["stop", "length", "model_length", "error", "tool_calls"]


class ChatCompletionResponse(BaseModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    model: str
    created: int
    choices: list[ChatCompletionChoice]
    usage: UsageInfo
