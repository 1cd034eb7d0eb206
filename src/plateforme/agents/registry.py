"""The agents of each workspace: create, read, update (each update a new version), versions, aliases.

Synchronous (SQLAlchemy sessions): callers on the event loop use asyncio.to_thread.
Every query is by workspace, so another workspace's agent is unknown (404), never reachable.
A version is immutable once written; the agent row only says which version is served
(`version`, switched by PATCH /v1/agents/{id}/version) and which is the newest.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from plateforme.agents.definition import check_definition
from plateforme.agents.errors import BadInput, Conflict, NotFound
from plateforme.agents.listing import AgentFilters, after_cursor, cursor_of
from plateforme.storage.agent_tables import Agent, AgentAlias, AgentVersion
from plateforme.tenancy.ids import as_utc, utcnow

# The fields an agent version keeps (Mistral's names); version_message belongs to one version only.
FIELDS = ("model", "name", "description", "instructions", "tools", "completion_args", "handoffs",
          "guardrails", "metadata", "deployment_chat")


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


@dataclass(frozen=True)
class AliasRecord:
    alias: str
    version: int
    created_at: datetime
    updated_at: datetime


def new_agent_id() -> str:
    return "ag_" + uuid.uuid4().hex


def _normalised(body: dict) -> dict:
    out = {field: body.get(field) for field in FIELDS}
    out["tools"] = list(out["tools"] or [])
    out["completion_args"] = dict(out["completion_args"] or {})
    out["deployment_chat"] = bool(out["deployment_chat"])
    out["version_message"] = body.get("version_message")
    return out


def _version_number(version: int | str | None) -> int | str | None:
    if isinstance(version, str) and version.strip().lstrip("-").isdigit():
        return int(version)
    return version


class AgentRegistry:
    def __init__(self, db):
        self.db = db

    # ----- reading

    def _agent(self, s, workspace_id: str, agent_id: str) -> Agent:
        row = s.scalars(select(Agent).where(Agent.id == agent_id, Agent.workspace_id == workspace_id)).first()
        if row is None:
            raise NotFound(f"no agent {agent_id!r} in this workspace (GET /v1/agents lists them)", "agent_id")
        return row

    def _versions(self, s, agent_id: str) -> list[int]:
        return list(s.scalars(select(AgentVersion.version).where(AgentVersion.agent_id == agent_id)
                              .order_by(AgentVersion.version)))

    def _resolve(self, s, agent: Agent, version: int | str | None) -> int:
        version = _version_number(version)
        if version is None:
            return agent.version
        if isinstance(version, int):
            return version
        alias = s.get(AgentAlias, (agent.id, version))
        if alias is None:
            raise NotFound(f"agent {agent.id!r} has no version alias {version!r} "
                           f"(GET /v1/agents/{agent.id}/aliases lists them)", "agent_version")
        return alias.version

    def _record(self, s, agent: Agent, number: int, versions: list[int] | None = None) -> AgentRecord:
        row = s.get(AgentVersion, (agent.id, number))
        if row is None:
            raise NotFound(f"agent {agent.id!r} has no version {number} "
                           f"(GET /v1/agents/{agent.id}/versions lists them)", "agent_version")
        updated = agent.updated_at if number == agent.version else row.created_at
        return AgentRecord(agent.id, agent.workspace_id, number,
                           versions if versions is not None else self._versions(s, agent.id), agent.version,
                           as_utc(agent.created_at), as_utc(updated), dict(row.body))

    def get(self, workspace_id: str, agent_id: str, version: int | str | None = None) -> AgentRecord:
        """The agent at `version` (a number, an alias, or None: its current version). Raises
        agents.errors.NotFound for an unknown agent (or another workspace's) or version."""
        with self.db.session() as s:
            agent = self._agent(s, workspace_id, agent_id)
            return self._record(s, agent, self._resolve(s, agent, version))

    def exists(self, workspace_id: str, agent_ids: list[str]) -> set[str]:
        """Which of `agent_ids` are agents of the workspace."""
        if not agent_ids:
            return set()
        with self.db.session() as s:
            return set(s.scalars(select(Agent.id).where(Agent.workspace_id == workspace_id,
                                                        Agent.id.in_(agent_ids))))

    def _current(self, workspace_id: str) -> list[AgentRecord]:
        """Every agent of the workspace at its current version, newest agent first."""
        with self.db.session() as s:
            rows = s.execute(select(Agent, AgentVersion)
                             .join(AgentVersion, (AgentVersion.agent_id == Agent.id)
                                   & (AgentVersion.version == Agent.version))
                             .where(Agent.workspace_id == workspace_id)
                             .order_by(Agent.created_at.desc(), Agent.id.desc())).all()
            versions: dict[str, list[int]] = {}
            ids = [agent.id for agent, _ in rows]
            if ids:
                for agent_id, number in s.execute(select(AgentVersion.agent_id, AgentVersion.version)
                                                  .where(AgentVersion.agent_id.in_(ids))
                                                  .order_by(AgentVersion.version)):
                    versions.setdefault(agent_id, []).append(number)
            return [AgentRecord(agent.id, agent.workspace_id, agent.version, versions.get(agent.id, []),
                                agent.version, as_utc(agent.created_at), as_utc(agent.updated_at),
                                dict(version.body)) for agent, version in rows]

    def list(self, workspace_id: str, filters: AgentFilters, page: int = 0, page_size: int = 20) -> list[AgentRecord]:
        """A page (0-indexed) of the workspace's agents that pass `filters`, newest first."""
        found = [a for a in self._current(workspace_id) if filters.accepts(a)]
        return found[page * page_size:(page + 1) * page_size]

    def page(self, workspace_id: str, filters: AgentFilters, page_size: int = 20,
             page_token: str | None = None) -> tuple[list[AgentRecord], str | None]:
        """Up to `page_size` agents after the cursor `page_token`, and the cursor of the next page
        (None on the last)."""
        found = [a for a in self._current(workspace_id) if filters.accepts(a)]
        if page_token:
            found = after_cursor(found, page_token)
        chosen = found[:page_size]
        return chosen, cursor_of(chosen[-1]) if len(found) > page_size else None

    def versions(self, workspace_id: str, agent_id: str, page: int = 0, page_size: int = 20) -> list[AgentRecord]:
        """A page of the agent's versions, newest first."""
        with self.db.session() as s:
            agent = self._agent(s, workspace_id, agent_id)
            numbers = self._versions(s, agent.id)
            chosen = list(reversed(numbers))[page * page_size:(page + 1) * page_size]
            return [self._record(s, agent, n, numbers) for n in chosen]

    # ----- writing

    def _check_handoffs(self, workspace_id: str, body: dict, self_id: str | None) -> None:
        handoffs = body.get("handoffs")
        if not handoffs:
            return
        for i, target in enumerate(handoffs):
            if target == self_id:
                raise BadInput(f"handoffs.{i}: an agent cannot hand off to itself; remove {target!r}", "handoffs")
        known = self.exists(workspace_id, list(handoffs))
        for i, target in enumerate(handoffs):
            if target not in known:
                raise BadInput(f"handoffs.{i}: {target!r} is not an agent of this workspace; hand off only to "
                               "agents listed by GET /v1/agents", "handoffs")

    def create(self, workspace_id: str, body: dict) -> AgentRecord:
        """A new agent at version 0 from a CreateAgentRequest body (model already checked)."""
        body = _normalised(body)
        check_definition(body)
        self._check_handoffs(workspace_id, body, None)
        now = utcnow()
        agent = Agent(id=new_agent_id(), workspace_id=workspace_id, version=0, latest_version=0,
                      created_at=now, updated_at=now)
        with self.db.session() as s:
            s.add(agent)
            s.flush()
            s.add(AgentVersion(agent_id=agent.id, version=0, body=body, created_at=now))
            s.commit()
            return self._record(s, agent, 0, [0])

    def update(self, workspace_id: str, agent_id: str, changes: dict) -> AgentRecord:
        """A new version: the current one with `changes` (the fields the request set) applied, made
        the current version. An update that changes nothing writes no version."""
        with self.db.session() as s:
            agent = self._agent(s, workspace_id, agent_id)
            served = agent.version
            base = dict(s.get(AgentVersion, (agent.id, served)).body)
        body = {**base, **{k: v for k, v in changes.items() if k in FIELDS}}
        for required in ("model", "name", "deployment_chat"):  # null there means "unchanged"
            if body.get(required) is None:
                body[required] = base.get(required)
        body["version_message"] = changes.get("version_message")
        body = _normalised(body)
        check_definition(body)
        self._check_handoffs(workspace_id, body, agent_id)
        if all(body[f] == _normalised(base)[f] for f in FIELDS) and body["version_message"] is None:
            return self.get(workspace_id, agent_id)
        now = utcnow()
        with self.db.session() as s:
            agent = self._agent(s, workspace_id, agent_id)
            if agent.version != served:  # switched meanwhile: this update was made from another version
                raise Conflict(f"agent {agent_id!r} changed while it was updated (it now serves version "
                               f"{agent.version}); read it again and retry the update", "agent_id")
            number = agent.latest_version + 1
            s.add(AgentVersion(agent_id=agent.id, version=number, body=body, created_at=now))
            agent.version, agent.latest_version, agent.updated_at = number, number, now
            try:
                s.commit()
            except IntegrityError:  # another update wrote this version number first
                raise Conflict(f"agent {agent_id!r} was updated by another request at the same time; read it "
                               "again and retry the update", "agent_id") from None
            return self._record(s, agent, number)

    def switch_version(self, workspace_id: str, agent_id: str, version: int) -> AgentRecord:
        with self.db.session() as s:
            agent = self._agent(s, workspace_id, agent_id)
            if s.get(AgentVersion, (agent.id, version)) is None:
                raise NotFound(f"agent {agent_id!r} has no version {version} "
                               f"(GET /v1/agents/{agent_id}/versions lists them)", "version")
            agent.version, agent.updated_at = version, utcnow()
            s.commit()
            return self._record(s, agent, version)

    def delete(self, workspace_id: str, agent_id: str) -> None:
        with self.db.session() as s:
            agent = self._agent(s, workspace_id, agent_id)
            s.execute(delete(AgentAlias).where(AgentAlias.agent_id == agent.id))
            s.execute(delete(AgentVersion).where(AgentVersion.agent_id == agent.id))
            s.delete(agent)
            s.commit()

    # ----- aliases

    def set_alias(self, workspace_id: str, agent_id: str, alias: str, version: int) -> AliasRecord:
        """Create `alias` for `version`, or point the existing alias at it."""
        now = utcnow()
        with self.db.session() as s:
            agent = self._agent(s, workspace_id, agent_id)
            if s.get(AgentVersion, (agent.id, version)) is None:
                raise NotFound(f"agent {agent_id!r} has no version {version} "
                               f"(GET /v1/agents/{agent_id}/versions lists them)", "version")
            row = s.get(AgentAlias, (agent.id, alias))
            if row is None:
                row = AgentAlias(agent_id=agent.id, alias=alias, version=version, created_at=now, updated_at=now)
                s.add(row)
            else:
                row.version, row.updated_at = version, now
            s.commit()
            return AliasRecord(row.alias, row.version, as_utc(row.created_at), as_utc(row.updated_at))

    def aliases(self, workspace_id: str, agent_id: str) -> list[AliasRecord]:
        with self.db.session() as s:
            agent = self._agent(s, workspace_id, agent_id)
            rows = s.scalars(select(AgentAlias).where(AgentAlias.agent_id == agent.id).order_by(AgentAlias.alias))
            return [AliasRecord(r.alias, r.version, as_utc(r.created_at), as_utc(r.updated_at)) for r in rows]

    def delete_alias(self, workspace_id: str, agent_id: str, alias: str) -> None:
        with self.db.session() as s:
            agent = self._agent(s, workspace_id, agent_id)
            row = s.get(AgentAlias, (agent.id, alias))
            if row is None:
                raise NotFound(f"agent {agent_id!r} has no version alias {alias!r}", "alias")
            s.delete(row)
            s.commit()
