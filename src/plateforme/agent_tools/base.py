"""What a tool the platform runs looks like to the conversation loop.

A Mistral tool entry of an agent or a conversation (`{"type": "document_library", ...}`,
`{"type": "connector", "connector_id": ...}`) is turned by its ToolProvider into one or more
PlatformTools: functions offered to the model that the platform itself executes. The loop
(conversations/loop.py) calls `run` when the model calls one, records a ToolExecutionEntry named
`entry_name` with `info`, feeds `content` back to the model, and carries `references` into the
answer as Mistral's tool_reference chunks.

A tool that cannot do what was asked (a refused query, a timeout, a server that failed) returns a
ToolOutcome with `error` set, never raises: the model reads the reason and the conversation goes
on. Only a mistake in the tool entry itself (unknown library or connector, another workspace's)
is raised, as ToolSpecError, when the toolset is resolved: a 400 naming the field.
"""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol

from plateforme.agents.errors import AgentsError
from plateforme.tenancy.principal import Principal


class ToolSpecError(AgentsError):
    """A tool entry that cannot be served; `param` is its field (e.g. "tools.0.library_ids")."""

    def __init__(self, message: str, param: str | None = None, status: int = 400):
        super().__init__(status, message, param)


@dataclass(frozen=True)
class ToolContext:
    principal: Principal
    conversation_id: str | None
    agent_id: str | None
    model: str
    tool_call_id: str
    # time.monotonic() by which the tool must have answered (the loop's wall-time bound).
    deadline: float


@dataclass
class ToolOutcome:
    # What the model reads as the tool's result (plain text, or JSON text).
    content: str
    # ToolExecutionEntry.info: what was done, for the client and the record (e.g. the executed
    # query, row count, truncated; the search's query and hits; the MCP tool's structured result).
    info: dict = field(default_factory=dict)
    # Mistral ToolReferenceChunk dicts: {"type": "tool_reference", "tool", "title", "url",
    # "favicon", "description"}; only what the tool really retrieved.
    references: list[dict] = field(default_factory=list)
    # Set when the tool refused or failed: the reason, also in `content` and `info["error"]`.
    error: str | None = None


@dataclass
class PlatformTool:
    # The function name the model calls: [a-zA-Z0-9_-]{1,64}, unique within a toolset.
    name: str
    description: str
    # JSON schema of the arguments (an object schema).
    parameters: dict
    # ToolExecutionEntry.name / the events' `name`: "document_library", or the connector's
    # tool name (e.g. "sales_db.query", "weather.get_forecast").
    entry_name: str
    run: Callable[[dict, ToolContext], Awaitable[ToolOutcome]]
    # The call pauses the conversation until the client allows or denies it (tool_confirmations).
    requires_confirmation: bool = False

    def definition(self) -> dict:
        """The OpenAI-protocol tool definition the model is offered (ChatRequest.tools)."""
        return {"type": "function",
                "function": {"name": self.name, "description": self.description, "parameters": self.parameters}}


class ToolProvider(Protocol):
    async def tools(self, principal: Principal, spec: dict, param: str) -> list[PlatformTool]:
        """The tools one Mistral tool entry `spec` (a dict as sent) gives the model. `param`: the
        entry's place in the request (e.g. "tools.1"), for errors. Raises ToolSpecError."""
        ...
