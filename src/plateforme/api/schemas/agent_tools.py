"""The tools and completion arguments of agents and conversations, as in Mistral's spec.

Shared by api/schemas/agents.py and api/schemas/conversations.py. Tools are validated here for
their shape; whether the server can run them (a library or connector of the workspace, a tool
kind this server has) is checked when the toolset is resolved (agent_tools/, a 400 naming it).
"""

from typing import Annotated, Any, Literal

from pydantic import Field

from plateforme.api.schemas.chat_messages import Function, ResponseFormat, Strict


class ToolConfiguration(Strict):
    exclude: list[str] | None = None
    include: list[str] | None = None
    requires_confirmation: list[str] | None = None


class FunctionTool(Strict):
    type: Literal["function"] = "function"
    function: Function


class DocumentLibraryTool(Strict):
    type: Literal["document_library"] = "document_library"
    library_ids: list[str] = Field(min_length=1)
    tool_configuration: ToolConfiguration | None = None


class ConnectorAuthorization(Strict):
    type: Literal["oauth2-token", "api-key"]
    value: str


class CustomConnector(Strict):
    type: Literal["connector"] = "connector"
    connector_id: str = Field(min_length=1)
    authorization: ConnectorAuthorization | None = None
    tool_configuration: ToolConfiguration | None = None


class BuiltInTool(Strict):
    """Mistral's hosted tools. Accepted by the schema so that using one is a 400 that names it
    (this server has no web search, code interpreter or image generation), not a 422."""

    type: Literal["web_search", "web_search_premium", "code_interpreter", "image_generation"]
    tool_configuration: ToolConfiguration | None = None
    open_results: bool | None = None


AgentTool = Annotated[FunctionTool | DocumentLibraryTool | CustomConnector | BuiltInTool,
                      Field(discriminator="type")]


class Prediction(Strict):
    type: Literal["content"] = "content"
    content: str = ""


class CompletionArgs(Strict):
    stop: str | list[str] | None = None
    presence_penalty: float | None = Field(default=None, ge=-2, le=2)
    frequency_penalty: float | None = Field(default=None, ge=-2, le=2)
    temperature: float | None = Field(default=None, ge=0, le=1)
    top_p: float | None = Field(default=None, ge=0, le=1)
    max_tokens: int | None = Field(default=None, ge=0)
    random_seed: int | None = Field(default=None, ge=0)
    prediction: Prediction | None = None
    response_format: ResponseFormat | None = None
    tool_choice: Literal["auto", "none", "any", "required"] = "auto"
    reasoning_effort: str | None = None


def tools_as_dicts(tools: list[Any] | None) -> list[dict] | None:
    """The tools as stored and handed to the capability: Mistral's shape, unset fields left out."""
    if tools is None:
        return None
    return [t.model_dump(exclude_none=True, by_alias=True) for t in tools]
