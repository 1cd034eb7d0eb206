"""The connectors of each workspace (database connections, MCP servers), as an admin registers them.

Synchronous (SQLAlchemy sessions): call it from a thread (asyncio.to_thread) on the event loop.
Every lookup is by workspace inside the query, so one workspace never reaches another's
connector, whether by id or by name.
"""

import re
import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError

from plateforme.agents.errors import BadInput, Conflict, NotFound
from plateforme.storage.connector_tables import Connector
from plateforme.tenancy.ids import as_utc, utcnow

KINDS = ("database", "mcp")
_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


@dataclass(frozen=True)
class ConnectorRecord:
    id: str
    workspace_id: str
    name: str
    kind: str
    description: str | None
    config: dict
    created_at: datetime
    updated_at: datetime


def _record(row: Connector) -> ConnectorRecord:
    return ConnectorRecord(row.id, row.workspace_id, row.name, row.kind, row.description, dict(row.config),
                           as_utc(row.created_at), as_utc(row.updated_at))


def check_name(name: str, param: str = "name") -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise BadInput(f"{param}: {name!r} is not a connector name; use 1-64 letters, digits, '_' or '-' "
                       "(agents call its tools by it)", param)
    return name


def _taken(name: str) -> Conflict:
    return Conflict(f"name: this workspace already has a connector named {name!r}; delete it first or choose "
                    "another name", "name")


class ConnectorStore:
    def __init__(self, db):
        self.db = db

    def add(self, workspace_id: str, name: str, kind: str, description: str | None, config: dict) -> ConnectorRecord:
        check_name(name)
        if kind not in KINDS:
            raise BadInput(f"kind: {kind!r} is not a connector kind; use one of {', '.join(KINDS)}", "kind")
        now = utcnow()
        row = Connector(id=str(uuid.uuid4()), workspace_id=workspace_id, name=name, kind=kind,
                        description=description, config=config, created_at=now, updated_at=now)
        with self.db.session() as s:
            s.add(row)
            try:
                s.commit()
            except IntegrityError:
                raise _taken(name) from None
            return _record(row)

    def check_free(self, workspace_id: str, name: str) -> None:
        """Conflict (409) when the workspace has a connector of that name (of any kind): checked
        before a registration's slower checks (connecting, starting a server)."""
        check_name(name)
        with self.db.session() as s:
            if s.scalar(select(Connector.id).where(Connector.workspace_id == workspace_id,
                                                   Connector.name == name)) is not None:
                raise _taken(name)

    def _row(self, s, workspace_id: str, id_or_name: str, kind: str | None) -> Connector:
        query = select(Connector).where(Connector.workspace_id == workspace_id,
                                        or_(Connector.id == id_or_name, Connector.name == id_or_name))
        if kind is not None:
            query = query.where(Connector.kind == kind)
        row = s.scalars(query).first()
        if row is None:
            what = f"{kind} connector" if kind else "connector"
            raise NotFound(f"no {what} {id_or_name!r} in this workspace")
        return row

    def get(self, workspace_id: str, id_or_name: str, kind: str | None = None) -> ConnectorRecord:
        with self.db.session() as s:
            return _record(self._row(s, workspace_id, id_or_name, kind))

    def list(self, workspace_id: str, kind: str | None = None) -> list[ConnectorRecord]:
        query = select(Connector).where(Connector.workspace_id == workspace_id).order_by(Connector.name)
        if kind is not None:
            query = query.where(Connector.kind == kind)
        with self.db.session() as s:
            return [_record(r) for r in s.scalars(query)]

    def update(self, workspace_id: str, id_or_name: str, kind: str | None = None, *,
               description: str | None = None, config: dict | None = None) -> ConnectorRecord:
        with self.db.session() as s:
            row = self._row(s, workspace_id, id_or_name, kind)
            if description is not None:
                row.description = description
            if config is not None:
                row.config = config
            row.updated_at = utcnow()
            s.commit()
            return _record(row)

    def delete(self, workspace_id: str, id_or_name: str, kind: str | None = None) -> ConnectorRecord:
        with self.db.session() as s:
            row = self._row(s, workspace_id, id_or_name, kind)
            record = _record(row)
            s.delete(row)
            s.commit()
            return record
