"""Chat completion request and response, as in Mistral's spec (ChatCompletionRequest, ...)."""

from typing import Any, Literal

from pydantic import AliasChoices, BaseModel, Field, model_validator

from plateforme.api.schemas.chat_messages import (
    AssistantMessage, Message, ResponseFormat, Strict, TextChunk, ThinkChunk, Tool, ToolCall, ToolChoice,
    message_dict,
)
from plateforme.chat.types import ChatRequest
from plateforme.guardrails.config import parse_guardrails

# Fields of Mistral's spec this server does not implement: accepted by the schema so that a
# request using them gets a 400 naming the field, not a generic unknown-field 422.
UNSUPPORTED_FIELDS = ("service_tier",)

# Mistral's ReasoningEffort values (the spec's, and `max`, which the mistralai SDK also sends).
ReasoningEffort = Literal["none", "minimal", "low", "medium", "high", "xhigh", "max"]

# Mistral's documented guardrail system prompt, prepended when `safe_prompt` is true.
SAFE_PROMPT = ("Always assist with care, respect, and truth. Respond with utmost utility yet securely. "
               "Avoid harmful, unethical, prejudiced, or negative content. Ensure replies promote "
               "fairness and positivity.")


class StreamOptions(Strict):
    """openai SDK compatibility: usage is always sent on the last chunk, so this changes nothing."""
    include_usage: bool | None = None
    include_obfuscation: bool | None = None


class Prediction(Strict):
    """Predicted output: a latency hint (the answer expected, mostly), never a change of the answer."""
    type: Literal["content"] = "content"
    content: str = ""


class ChatCompletionRequest(Strict):
    model: str
    messages: list[Message] = Field(min_length=1)
    temperature: float | None = Field(default=None, ge=0, le=1.5)
    top_p: float | None = Field(default=None, gt=0, le=1)
    # `max_completion_tokens` is the openai SDK's name for it.
    max_tokens: int | None = Field(
        default=None, ge=1, validation_alias=AliasChoices("max_tokens", "max_completion_tokens")
    )
    # Beyond Mistral's chat spec (it has min_tokens on FIM): no end of answer before this many tokens.
    min_tokens: int | None = Field(default=None, ge=0)
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
    response_format: ResponseFormat | None = None
    tools: list[Tool] | None = None
    tool_choice: ToolChoice | Literal["auto", "none", "any", "required"] = "auto"
    parallel_tool_calls: bool = True
    safe_prompt: bool = False
    # OpenAI-protocol log probabilities (not in Mistral's spec).
    logprobs: bool = False
    top_logprobs: int | None = Field(default=None, ge=0, le=20)
    prediction: Prediction | None = None
    # Reasoning models only (400 on others): how much to think; `none` switches thinking off
    # where the model's template can.
    reasoning_effort: ReasoningEffort | None = None
    # Reasoning models only: "reasoning" asks for the reasoning system prompt.
    prompt_mode: Literal["reasoning"] | None = None
    # Mistral's GuardrailConfig list (plus `apply_to` and action `redact`: guardrails/config.py),
    # checked by guardrails.config.parse_guardrails so that a mistake is a 400 naming the field.
    guardrails: list[Any] | None = None
    service_tier: Any = None

    @model_validator(mode="after")
    def _coherent(self):
        for i, message in enumerate(self.messages):
            if isinstance(message, AssistantMessage) and message.prefix and i != len(self.messages) - 1:
                raise ValueError(f"messages.{i}: prefix=true is only allowed on the last message")
        if self.response_format and self.response_format.type == "json_schema" \
                and self.response_format.json_schema is None:
            raise ValueError("response_format: type json_schema needs a json_schema object")
        if self.tools:
            names = [t.function.name for t in self.tools]
            if len(set(names)) != len(names):
                raise ValueError("tools: function names must be unique")
        return self

    def unsupported_fields(self) -> list[str]:
        return [name for name in UNSUPPORTED_FIELDS if getattr(self, name) is not None]

    def _json_schema(self) -> dict | None:
        fmt = self.response_format
        if fmt is None or fmt.type == "text":
            return None
        return fmt.json_schema.schema_ if fmt.type == "json_schema" else {}

    def to_chat_request(self) -> ChatRequest:
        messages = [message_dict(m) for m in self.messages]
        if self.safe_prompt:
            if messages[0]["role"] == "system":
                messages[0] = {**messages[0], "content": f"{SAFE_PROMPT}\n\n{messages[0]['content']}"}
            else:
                messages.insert(0, {"role": "system", "content": SAFE_PROMPT})
        last = self.messages[-1]
        stop = [self.stop] if isinstance(self.stop, str) else list(self.stop or [])
        tool_choice = self.tool_choice.model_dump() if isinstance(self.tool_choice, ToolChoice) else self.tool_choice
        return ChatRequest(
            model=self.model, messages=messages, max_tokens=self.max_tokens, min_tokens=self.min_tokens,
            temperature=self.temperature, top_p=self.top_p, stop=stop, seed=self.random_seed,
            n=self.n or 1, presence_penalty=self.presence_penalty,
            frequency_penalty=self.frequency_penalty,
            tools=[t.model_dump() for t in self.tools] if self.tools else None,
            tool_choice=tool_choice, parallel_tool_calls=self.parallel_tool_calls,
            json_schema=self._json_schema(),
            prefix=isinstance(last, AssistantMessage) and last.prefix,
            logprobs=self.logprobs or bool(self.top_logprobs), top_logprobs=self.top_logprobs,
            prediction=self.prediction.content if self.prediction and self.prediction.content else None,
            reasoning_effort=self.reasoning_effort, prompt_mode=self.prompt_mode,
            guardrails=parse_guardrails(self.guardrails) or None,
        )


class UsageInfo(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class AssistantMessageOut(BaseModel):
    role: Literal["assistant"] = "assistant"
    # A string, or for a reasoning model's answer the chunks [thinking chunk, text chunk]
    # (api/completion_shapes.py).
    content: str | list[TextChunk | ThinkChunk] | None
    tool_calls: list[ToolCall] | None = None


class ChatCompletionChoice(BaseModel):
    index: int
    message: AssistantMessageOut
    finish_reason: Literal["stop", "length", "model_length", "error", "tool_calls"]
    logprobs: dict | None = None


class ChatCompletionResponse(BaseModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    model: str
    created: int
    choices: list[ChatCompletionChoice]
    usage: UsageInfo
    # Beyond Mistral: what the request's guardrails checked and the scores (guardrails/decision.py).
    guardrails: list[dict] | None = None
