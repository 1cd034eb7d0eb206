"""POST /v1/moderations and /v1/chat/moderations bodies: Mistral's ClassificationRequest,
ChatModerationRequest and ModerationResponse (plus `usage`, as Mistral's answers carry it)."""

from typing import Any

from pydantic import BaseModel, ConfigDict, TypeAdapter, ValidationError

from plateforme.api.schemas.chat_messages import Message, text_of
from plateforme.api.schemas.classifications import ClassificationInputError as ModerationInputError
from plateforme.api.schemas.classifications import check_count
from plateforme.api.schemas.embeddings import PromptUsage

_CONVERSATION = TypeAdapter(list[Message])


class ChatModerationRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: str
    # A conversation (a list of messages) or a list of conversations.
    input: Any

    def conversations(self) -> list[list[dict]]:
        """Each conversation as [{"role", "content": text}...]; the last turn is the judged one."""
        value = self.input
        if not isinstance(value, list) or not value:
            raise ModerationInputError("input must be a conversation (a non-empty list of messages) or a list of "
                                       "conversations")
        nested = isinstance(value[0], list)
        if any(isinstance(item, list) != nested for item in value):
            raise ModerationInputError("input mixes messages and conversations: give one conversation (a list of "
                                       "messages) or a list of conversations (lists of messages)")
        groups = value if nested else [value]
        check_count(len(groups), "conversations")
        return [_conversation(group, f"input[{i}]" if nested else "input") for i, group in enumerate(groups)]


def _conversation(messages: list, where: str) -> list[dict]:
    if not messages:
        raise ModerationInputError(f"{where} is an empty conversation: give at least one message")
    try:
        parsed = _CONVERSATION.validate_python(messages)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in first["loc"])
        raise ModerationInputError(f"{where}{loc}: {first['msg']}") from exc
    turns = [{"role": m.role, "content": text_of(m.content)} for m in parsed]
    if not turns[-1]["content"].strip():
        raise ModerationInputError(f"{where}[{len(turns) - 1}]: the last message, the one judged, has no text")
    return turns


class ModerationObject(BaseModel):
    categories: dict[str, bool]
    category_scores: dict[str, float]


class ModerationResponse(BaseModel):
    id: str
    model: str
    results: list[ModerationObject]
    usage: PromptUsage
