"""POST /v1/classifications and /v1/chat/classifications bodies: Mistral's ClassificationRequest,
ChatClassificationRequest (InstructRequest conversations) and ClassificationResponse (plus
`usage`, as the other metered routes answer)."""

import secrets
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from plateforme.api.schemas.chat_messages import Message, message_dict
from plateforme.api.schemas.embeddings import PromptUsage

# Texts, or conversations, one request may carry.
MAX_INPUTS = 1024


class ClassificationInputError(ValueError):
    """The input is not what the route takes; the message says what is wrong, `param` where."""

    def __init__(self, message: str, param: str = "input"):
        super().__init__(message)
        self.param = param


def check_count(count: int, what: str) -> None:
    if count > MAX_INPUTS:
        raise ClassificationInputError(f"input has {count} {what}, more than the {MAX_INPUTS} one request may "
                                       "carry; send them in several requests")


class ClassificationRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: str
    # A string or a list of strings (checked by texts(), for errors that say what is wrong).
    input: Any
    metadata: dict | None = None

    def texts(self) -> list[str]:
        value = [self.input] if isinstance(self.input, str) else self.input
        if not isinstance(value, list):
            raise ClassificationInputError("input must be a string or a list of strings")
        if not value:
            raise ClassificationInputError("input is empty: give at least one text")
        bad = next((i for i, item in enumerate(value) if not isinstance(item, str)), None)
        if bad is not None:
            raise ClassificationInputError(f"input[{bad}] is not a string: input must be a string or a list of "
                                           "strings")
        check_count(len(value), "texts")
        empty = next((i for i, item in enumerate(value) if not item.strip()), None)
        if empty is not None:
            raise ClassificationInputError(f"input[{empty}] is empty: every text must have some content")
        return value


class InstructRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    messages: list[Message] = Field(min_length=1)


class ChatClassificationRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: str
    # One conversation ({"messages": [...]}) or a list of them.
    input: InstructRequest | list[InstructRequest]

    def conversations(self) -> list[list[dict]]:
        """Each conversation as [{"role", "content": text, "tool_calls"?}...]."""
        value = self.input if isinstance(self.input, list) else [self.input]
        if not value:
            raise ClassificationInputError("input is empty: give at least one conversation ({\"messages\": [...]})")
        check_count(len(value), "conversations")
        return [[message_dict(m) for m in conversation.messages] for conversation in value]


class ClassificationTargetResult(BaseModel):
    scores: dict[str, float]


class ClassificationResponse(BaseModel):
    id: str = Field(default_factory=lambda: "cls-" + secrets.token_hex(16))
    model: str
    results: list[dict[str, ClassificationTargetResult]]
    usage: PromptUsage

    @classmethod
    def of(cls, model: str, results: list[dict[str, dict[str, float]]], prompt_tokens: int) -> "ClassificationResponse":
        return cls(model=model, results=[{target: ClassificationTargetResult(scores=scores)
                                          for target, scores in row.items()} for row in results],
                   usage=PromptUsage(prompt_tokens=prompt_tokens, total_tokens=prompt_tokens))
