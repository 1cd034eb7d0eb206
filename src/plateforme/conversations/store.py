"""Conversations and their entries in the database, per workspace.

Synchronous (SQLAlchemy sessions): callers on the event loop use asyncio.to_thread.

One response at a time: `begin` marks the conversation running for this runner with a lease
(renewed while the response is made, `renew`), and `end` sets what it became (idle, waiting on the
client, or failed with the error). A second response while one runs is a 409. A conversation this
runner was answering when it stopped, or whose runner's lease ran out, is marked failed at the
next start (`fail_interrupted`) or may be taken over by the next `begin`.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func, or_, select, update

from plateforme.agents.errors import BadInput, Conflict, NotFound
from plateforme.storage.conversation_tables import Conversation, ConversationEntry
from plateforme.storage.json_match import json_equals
from plateforme.tenancy.ids import as_utc, utcnow

INTERRUPTED = ("the platform stopped while this conversation's response was being made; the response is "
               "lost: restart the conversation from its last entry, or append again")
# How long a response's claim holds without a renewal (the service renews it every third of it).
LEASE_S = 60.0
# The conversation fields a caller sets (Mistral's names; `metadata` is the column `metadata`).
FIELDS = ("agent_id", "agent_version", "active_agent_id", "model", "instructions", "tools", "completion_args",
          "guardrails", "name", "description", "metadata")


@dataclass(frozen=True)
class ConversationRecord:
    id: str
    workspace_id: str
    agent_id: str | None
    agent_version: str | int | None
    active_agent_id: str | None
    model: str | None
    instructions: str | None
    tools: list | None
    completion_args: dict | None
    guardrails: list | None
    name: str | None
    description: str | None
    metadata: dict | None
    status: str  # idle | running | waiting | failed
    error: str | None
    created_at: datetime
    updated_at: datetime


def _record(row: Conversation) -> ConversationRecord:
    return ConversationRecord(row.id, row.workspace_id, row.agent_id, row.agent_version, row.active_agent_id,
                              row.model, row.instructions, row.tools, row.completion_args, row.guardrails, row.name,
                              row.description, row.meta, row.status, row.error, as_utc(row.created_at),
                              as_utc(row.updated_at))


def _not_found(conversation_id: str) -> NotFound:
    return NotFound(f"conversation {conversation_id!r} not found in this workspace; list them with "
                    "GET /v1/conversations", "conversation_id")


def _copy_id(entry_id: str) -> str:
    """A new id of the same kind ("msg_...", "tool_exec_..."): entry ids are unique across conversations."""
    return f"{entry_id.rsplit('_', 1)[0]}_{secrets.token_hex(16)}"


def _metadata_clauses(wanted: dict) -> tuple[list, dict]:
    """SQL clauses for the scalar values of a metadata filter; the other values, checked in Python."""
    clauses, rest = [], {}
    for key, value in wanted.items():
        clause = json_equals(Conversation.meta[key], value)
        if clause is not None:
            clauses.append(clause)
        else:
            rest[key] = value
    return clauses, rest


def _matches(metadata: dict | None, wanted: dict) -> bool:
    metadata = metadata or {}
    return all(key in metadata and metadata[key] == value and type(metadata[key]) is type(value)
               for key, value in wanted.items())


class ConversationStore:
    def __init__(self, db, runner: str):
        """`runner`: this gateway's runner id (storage/runner_identity.py), kept on the
        conversations it is answering, so that a restart marks its interrupted ones failed."""
        self.db, self.runner = db, runner

    # -- conversations -------------------------------------------------------------------------

    def create(self, workspace_id: str, conversation_id: str, fields: dict, entries: list[dict] = (),
               running: bool = True) -> ConversationRecord:
        """A new conversation with `fields` (FIELDS) and its first `entries`; running for this
        runner (its first response is being made) unless `running` is False."""
        unknown = set(fields) - set(FIELDS)
        if unknown:
            raise ValueError(f"not conversation fields: {sorted(unknown)}")
        now = utcnow()
        values = {("meta" if k == "metadata" else k): v for k, v in fields.items()}
        row = Conversation(id=conversation_id, workspace_id=workspace_id, created_at=now, updated_at=now,
                           status="running" if running else "idle", **values)
        if running:
            row.runner, row.lease_until = self.runner, now + timedelta(seconds=LEASE_S)
        with self.db.session() as s:
            s.add(row)
            s.flush()
            self._add_entries(s, conversation_id, entries, 0, now)
            s.commit()
            return _record(row)

    def get(self, workspace_id: str, conversation_id: str) -> ConversationRecord:
        with self.db.session() as s:
            row = s.get(Conversation, conversation_id)
            if row is None or row.workspace_id != workspace_id:
                raise _not_found(conversation_id)
            return _record(row)

    def list(self, workspace_id: str, page: int = 0, page_size: int = 100,
             metadata: dict | None = None) -> list[ConversationRecord]:
        """The workspace's conversations, newest first, `page_size` a page; `metadata`: only those
        whose metadata has each of these keys with this value."""
        if page < 0:
            raise BadInput("page: 0 or more (the first page is 0)", "page")
        if not 1 <= page_size <= 1000:
            raise BadInput("page_size: from 1 to 1000", "page_size")
        if metadata is not None and not isinstance(metadata, dict):
            raise BadInput('metadata: a JSON object of the values to match, e.g. {"team": "sales"}', "metadata")
        clauses, rest = _metadata_clauses(metadata or {})
        query = (select(Conversation).where(Conversation.workspace_id == workspace_id, *clauses)
                 .order_by(Conversation.created_at.desc(), Conversation.id.desc()))
        with self.db.session() as s:
            if not rest:
                rows = s.scalars(query.offset(page * page_size).limit(page_size)).all()
                return [_record(r) for r in rows]
            found = [r for r in s.scalars(query) if _matches(r.meta, metadata)]
            return [_record(r) for r in found[page * page_size:(page + 1) * page_size]]

    def delete(self, workspace_id: str, conversation_id: str) -> None:
        """Delete the conversation and its entries; 409 while a response is being made."""
        with self.db.session() as s:
            row = s.get(Conversation, conversation_id)
            if row is None or row.workspace_id != workspace_id:
                raise _not_found(conversation_id)
            if row.status == "running" and not self._lapsed(row):
                raise Conflict(f"conversation {conversation_id!r} is making a response; delete it once the "
                               "response is done", "conversation_id")
            s.execute(delete(ConversationEntry).where(ConversationEntry.conversation_id == conversation_id))
            s.delete(row)
            s.commit()

    # -- entries -------------------------------------------------------------------------------

    def entries(self, workspace_id: str, conversation_id: str) -> list[dict]:
        """The conversation's entries in order (Mistral's entry dicts)."""
        with self.db.session() as s:
            row = s.get(Conversation, conversation_id)
            if row is None or row.workspace_id != workspace_id:
                raise _not_found(conversation_id)
            bodies = s.scalars(select(ConversationEntry.body)
                               .where(ConversationEntry.conversation_id == conversation_id)
                               .order_by(ConversationEntry.position)).all()
            return list(bodies)

    def append(self, conversation_id: str, entries: list[dict]) -> None:
        """Add `entries` after the conversation's last one (the response making them holds it)."""
        if not entries:
            return
        with self.db.session() as s:
            last = s.scalar(select(func.max(ConversationEntry.position))
                            .where(ConversationEntry.conversation_id == conversation_id))
            now = utcnow()
            self._add_entries(s, conversation_id, entries, 0 if last is None else last + 1, now)
            s.execute(update(Conversation).where(Conversation.id == conversation_id).values(updated_at=now))
            s.commit()

    @staticmethod
    def _add_entries(s, conversation_id: str, entries, first: int, now: datetime) -> None:
        for i, entry in enumerate(entries):
            s.add(ConversationEntry(id=entry["id"], conversation_id=conversation_id, position=first + i,
                                    type=entry["type"], body=entry, created_at=now))

    # -- one response at a time ----------------------------------------------------------------

    def begin(self, workspace_id: str, conversation_id: str) -> tuple[ConversationRecord, tuple[str, str | None]]:
        """Claim the conversation for a response by this runner; 404 unknown, 409 if one is being
        made. The record (running) and the (status, error) it had, to go back to (`end`) if the
        response is refused before it runs."""
        now = utcnow()
        with self.db.session() as s:
            row = s.get(Conversation, conversation_id)
            if row is None or row.workspace_id != workspace_id:
                raise _not_found(conversation_id)
            before = (row.status, row.error)
            # Only from the state just read: a concurrent claim makes this one match nothing.
            claimed = s.execute(update(Conversation)
                                .where(Conversation.id == conversation_id, Conversation.status == row.status,
                                       or_(Conversation.status != "running", Conversation.lease_until < now))
                                .values(status="running", runner=self.runner, error=None,
                                        lease_until=now + timedelta(seconds=LEASE_S), updated_at=now)
                                .execution_options(synchronize_session=False))
            s.commit()
            if not claimed.rowcount:
                raise Conflict(f"conversation {conversation_id!r} is already making a response; wait for it to "
                               "finish (its status is running), then append", "conversation_id")
            s.refresh(row)
            if before[0] == "running":  # taken over from a runner whose lease ran out
                before = ("failed", INTERRUPTED)
            return _record(row), before

    def renew(self, conversation_id: str) -> bool:
        """Extend this runner's lease on the response; False if it is no longer this runner's."""
        now = utcnow()
        with self.db.session() as s:
            done = s.execute(update(Conversation)
                             .where(Conversation.id == conversation_id, Conversation.status == "running",
                                    Conversation.runner == self.runner)
                             .values(lease_until=now + timedelta(seconds=LEASE_S)))
            s.commit()
            return bool(done.rowcount)

    def end(self, conversation_id: str, status: str, error: str | None = None,
            active_agent_id: str | None = None) -> None:
        """The response is over: the conversation is `status` (idle, waiting or failed with `error`)."""
        if status not in ("idle", "waiting", "failed"):
            raise ValueError(f"a response ends idle, waiting or failed, not {status!r}")
        values = {"status": status, "error": error, "runner": None, "lease_until": None, "updated_at": utcnow()}
        if active_agent_id is not None:
            values["active_agent_id"] = active_agent_id
        with self.db.session() as s:
            s.execute(update(Conversation)
                      .where(Conversation.id == conversation_id, Conversation.runner == self.runner)
                      .values(**values))
            s.commit()

    def entries_through(self, workspace_id: str, conversation_id: str,
                        from_entry_id: str) -> tuple[ConversationRecord, list[dict]]:
        """For a restart: the conversation, and copies (new ids) of its entries up to and including
        `from_entry_id`, to make a new conversation of (`create`). 400 naming from_entry_id if it is
        not an entry of this conversation."""
        source = self.get(workspace_id, conversation_id)
        entries = self.entries(workspace_id, conversation_id)
        ids = [e.get("id") for e in entries]
        if from_entry_id not in ids:
            raise BadInput(f"from_entry_id: {from_entry_id!r} is not an entry of conversation "
                           f"{conversation_id!r}; take an id from GET /v1/conversations/{conversation_id}/history",
                           "from_entry_id")
        return source, [{**e, "id": _copy_id(e["id"])} for e in entries[:ids.index(from_entry_id) + 1]]

    # -- interrupted responses -----------------------------------------------------------------

    @staticmethod
    def _lapsed(row: Conversation) -> bool:
        return row.lease_until is not None and as_utc(row.lease_until) < utcnow()

    def fail_interrupted(self) -> int:
        """Mark failed the conversations this runner was answering when it stopped, and those of
        any runner whose lease ran out; the number marked."""
        now = utcnow()
        with self.db.session() as s:
            result = s.execute(update(Conversation)
                               .where(Conversation.status == "running",
                                      or_(Conversation.runner == self.runner, Conversation.lease_until < now))
                               .values(status="failed", error=INTERRUPTED, runner=None, lease_until=None,
                                       updated_at=now))
            s.commit()
            return result.rowcount or 0
