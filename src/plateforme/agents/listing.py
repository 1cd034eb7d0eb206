"""Filters of the agents list (name, search, id, metadata, sources, deployment_chat) and the
opaque cursor of GET /v1/agents/pages."""

from dataclasses import dataclass

from plateforme.agents.errors import BadInput
from plateforme.storage.page_tokens import decode_token, encode_token
from plateforme.tenancy.ids import as_utc

# Where an agent was made (Mistral's RequestSource): through this API, always.
SOURCE = "api"


@dataclass(frozen=True)
class AgentFilters:
    name: str | None = None  # the agent's name, exactly
    search: str | None = None  # a part of its name or id, any case
    id: str | None = None
    metadata: dict | None = None  # every key given, with that value
    sources: list[str] | None = None
    deployment_chat: bool | None = None

    def accepts(self, agent) -> bool:
        body = agent.body
        if self.name is not None and body.get("name") != self.name:
            return False
        if self.search and self.search.lower() not in f"{body.get('name', '')}\n{agent.id}".lower():
            return False
        if self.id is not None and agent.id != self.id:
            return False
        if self.sources is not None and SOURCE not in self.sources:
            return False
        if self.deployment_chat is not None and bool(body.get("deployment_chat")) != self.deployment_chat:
            return False
        mine = body.get("metadata") or {}
        return all(key in mine and mine[key] == value for key, value in (self.metadata or {}).items())


def cursor_of(agent) -> str:
    """The cursor after `agent` in the list's order (newest first)."""
    return encode_token(agent.created_at, agent.id)


def after_cursor(agents: list, token: str) -> list:
    """The agents after the one `token` names (the list is newest first)."""
    try:
        key = decode_token(token)
    except ValueError:
        raise BadInput("page_token: not a cursor of this server; pass the next_page_token of a previous "
                       "GET /v1/agents/pages answer, or none for the first page", "page_token") from None
    return [a for a in agents if (as_utc(a.created_at), a.id) < key]
