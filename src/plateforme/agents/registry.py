"""The agents of each workspace: create, read, update (each update a new version), versions, aliases.

OWNER: engineer A (issue 14). Skeleton committed by the lead to pin the interface.
Synchronous (SQLAlchemy sessions): callers on the event loop use asyncio.to_thread.
"""

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class AgentRecord:
    id: str
    workspace_id: str
    version: int  # the version this record describes
    versions: list[int]  # every version of the agent, oldest first
    current_version: int  # the version served when none is asked for
    created_at: datetime
    updated_at: datetime
    # {model, name, description, instructions, tools, completion_args, handoffs, guardrails,
    #  metadata, deployment_chat, version_message}: Mistral's field names.
    body: dict

    @property
    def name(self) -> str:
        return self.body["name"]

    @property
    def model(self) -> str:
        return self.body["model"]


class AgentRegistry:
    def __init__(self, db):
        self.db = db

    def get(self, workspace_id: str, agent_id: str, version: int | str | None = None) -> AgentRecord:
        """The agent at `version` (a number, an alias, or None: its current version). Raises
        agents.errors.NotFound for an unknown agent (or another workspace's) or version."""
        raise NotImplementedError("engineer A")
