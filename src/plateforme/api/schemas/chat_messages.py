"""Chat messages and tools as in Mistral's spec (SystemMessage, ..., Tool, ToolChoice)."""

import json
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TextChunk(Strict):
    type: Literal["text"] = "text"
    text: str


class ThinkChunk(Strict):
    """A reasoning model's thinking (Mistral's ThinkChunk), as answers carry it and as clients
    send earlier answers back; the thinking of earlier turns is not shown to the model again."""
    type: Literal["thinking"] = "thinking"
    thinking: list[TextChunk]
    signature: str | None = None
    closed: bool = True


Content = str | list[TextChunk]
AssistantContent = str | list[Annotated[TextChunk | ThinkChunk, Field(discriminator="type")]]


def text_of(content: AssistantContent | None) -> str:
    """The text of a message's content (thinking chunks left out)."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    return "".join(chunk.text for chunk in content if isinstance(chunk, TextChunk))


class FunctionCall(Strict):
    name: str = Field(min_length=1)
    arguments: dict[str, Any] | str

    @field_validator("arguments")
    @classmethod
    def _json_arguments(cls, value):
        if isinstance(value, str):
            try:
                json.loads(value or "{}")
            except ValueError as exc:
                raise ValueError("arguments must be a JSON object or a string holding one") from exc
        return value


class ToolCall(Strict):
    id: str | None = None
    type: Literal["function"] = "function"
    function: FunctionCall
    index: int | None = None


class SystemMessage(Strict):
    role: Literal["system"]
    content: Content


class UserMessage(Strict):
    role: Literal["user"]
    content: Content | None


class AssistantMessage(Strict):
    role: Literal["assistant"]
    content: AssistantContent | None = None
    tool_calls: list[ToolCall] | None = None
    prefix: bool = False


class ToolMessage(Strict):
    role: Literal["tool"]
    content: Content | None
    tool_call_id: str | None = None
    name: str | None = None


Message = Annotated[
    SystemMessage | UserMessage | AssistantMessage | ToolMessage, Field(discriminator="role")
]


class Function(Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")
    description: str = ""
    strict: bool = False
    parameters: dict[str, Any]

    @field_validator("parameters")
    @classmethod
    def _object_schema(cls, value: dict) -> dict:
        if value.get("type", "object") != "object":
            raise ValueError("function parameters must be a JSON schema of type object")
        if "properties" in value and not isinstance(value["properties"], dict):
            raise ValueError("function parameters: properties must be an object")
        return value


class Tool(Strict):
    type: Literal["function"] = "function"
    function: Function


class FunctionName(Strict):
    name: str


class ToolChoice(Strict):
    type: Literal["function"] = "function"
    function: FunctionName


class JsonSchema(Strict):
    name: str
    description: str | None = None
    schema_: dict[str, Any] = Field(alias="schema")
    strict: bool = False


class ResponseFormat(Strict):
    type: Literal["text", "json_object", "json_schema"] = "text"
    json_schema: JsonSchema | None = None


def message_dict(message) -> dict:
    """A message as the chat capability takes it (OpenAI-protocol dict, text content)."""
    out = {"role": message.role, "content": text_of(message.content)}
    if isinstance(message, AssistantMessage) and message.tool_calls:
        out["tool_calls"] = [
            {"id": c.id, "type": "function", "function": {
                "name": c.function.name,
                "arguments": c.function.arguments if isinstance(c.function.arguments, str)
                else json.dumps(c.function.arguments)}}
            for c in message.tool_calls
        ]
    if isinstance(message, ToolMessage):
        if message.tool_call_id:
            out["tool_call_id"] = message.tool_call_id
        if message.name:
            out["name"] = message.name
    return out
