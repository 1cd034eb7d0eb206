"""Agents as in Mistral's spec: CreateAgentRequest, UpdateAgentRequest, Agent, AgentAliasResponse,
AgentListPage, AgentsCompletionRequest."""

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from plateforme.agents.listing import SOURCE
from plateforme.agents.registry import AgentRecord, AliasRecord
from plateforme.api.schemas.agent_tools import AgentTool, CompletionArgs, tools_as_dicts
from plateforme.api.schemas.chat_messages import Message, ResponseFormat, Strict, ToolChoice
from plateforme.api.schemas.chat import Prediction, ReasoningEffort


class _Definition(Strict):
    instructions: str | None = None
    tools: list[AgentTool] | None = None
    completion_args: CompletionArgs | None = None
    guardrails: list[Any] | None = None  # checked by guardrails.config.parse_guardrails (400 naming it)
    description: str | None = None
    handoffs: list[str] | None = Field(default=None, min_length=1)
    metadata: dict[str, Any] | None = None
    version_message: str | None = Field(default=None, max_length=500)


class CreateAgentRequest(_Definition):
    model: str = Field(min_length=1)
    name: str = Field(min_length=1)

    def body(self) -> dict:
        return {**self.model_dump(exclude={"tools", "completion_args"}), **_tools_and_args(self)}


class UpdateAgentRequest(_Definition):
    model: str | None = Field(default=None, min_length=1)
    name: str | None = Field(default=None, min_length=1)
    deployment_chat: bool | None = None

    def changes(self) -> dict:
        """The fields the request set (a null included: it clears the field), in the stored form."""
        changes = {name: getattr(self, name) for name in self.model_fields_set}
        changes.update({k: v for k, v in _tools_and_args(self).items() if k in self.model_fields_set})
        return changes


def _tools_and_args(request: _Definition) -> dict:
    args = request.completion_args
    return {"tools": tools_as_dicts(request.tools) or [],
            "completion_args": args.model_dump(exclude_none=True, by_alias=True) if args else {}}


class Agent(BaseModel):
    object: Literal["agent"] = "agent"
    id: str
    name: str
    model: str
    description: str | None = None
    instructions: str | None = None
    tools: list[dict]
    completion_args: dict
    guardrails: list[Any] | None = None
    handoffs: list[str] | None = None
    metadata: dict[str, Any] | None = None
    version: int
    versions: list[int]
    created_at: datetime
    updated_at: datetime
    deployment_chat: bool
    source: str
    version_message: str | None = None


def agent_response(record: AgentRecord) -> Agent:
    body = record.body
    return Agent(id=record.id, name=body["name"], model=body["model"], description=body.get("description"),
                 instructions=body.get("instructions"), tools=body.get("tools") or [],
                 completion_args=body.get("completion_args") or {}, guardrails=body.get("guardrails"),
                 handoffs=body.get("handoffs"), metadata=body.get("metadata"), version=record.version,
                 versions=record.versions, created_at=record.created_at, updated_at=record.updated_at,
                 deployment_chat=bool(body.get("deployment_chat")), source=SOURCE,
                 version_message=body.get("version_message"))


class AgentAliasResponse(BaseModel):
    alias: str
    version: int
    created_at: datetime
    updated_at: datetime


def alias_response(record: AliasRecord) -> AgentAliasResponse:
    return AgentAliasResponse(alias=record.alias, version=record.version, created_at=record.created_at,
                              updated_at=record.updated_at)


class AgentListPage(BaseModel):
    object: Literal["list"] = "list"
    data: list[Agent]
    next_page_token: str | None = None


class AgentsCompletionRequest(Strict):
    """An agent as a chat completion: the agent gives model, instructions, tools, completion_args
    and guardrails; the request's own fields add to them or override them."""

    agent_id: str = Field(min_length=1)
    messages: list[Message] = Field(min_length=1)
    max_tokens: int | None = Field(default=None, ge=0)
    stream: bool = False
    stop: str | list[str] | None = None
    random_seed: int | None = Field(default=None, ge=0)
    metadata: dict[str, Any] | None = None
    response_format: ResponseFormat | None = None
    # Function tools join the agent's; hosted or platform tools are refused (400 naming them).
    tools: list[AgentTool] | None = None
    tool_choice: ToolChoice | Literal["auto", "none", "any", "required"] | None = None
    presence_penalty: float | None = Field(default=None, ge=-2, le=2)
    frequency_penalty: float | None = Field(default=None, ge=-2, le=2)
    n: int | None = Field(default=None, ge=1)
    prediction: Prediction | None = None
    parallel_tool_calls: bool = True
    reasoning_effort: ReasoningEffort | None = None
    prompt_mode: Literal["reasoning"] | None = None
    guardrails: list[Any] | None = None
    prompt_cache_key: str | None = None
    service_tier: Any = None
