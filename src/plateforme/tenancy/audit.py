"""The audit log: append-only records of admin actions and data access."""

import asyncio
from datetime import datetime

from sqlalchemy import select

from plateforme.storage.database import Database
from plateforme.storage.tables import AuditEvent
from plateforme.tenancy.ids import utcnow
from plateforme.tenancy.principal import Principal


class AuditLog:
    def __init__(self, db: Database):
        self.db = db

    def record(self, principal: Principal | None, action: str, resource_type: str | None = None,
               resource_id: str | None = None, address: str | None = None, detail: dict | None = None,
               workspace_id: str | None = None) -> None:
        event = AuditEvent(
            at=utcnow(), action=action, resource_type=resource_type, resource_id=resource_id, address=address,
            detail=detail, workspace_id=workspace_id or (principal.workspace_id if principal else None),
            actor_key_id=principal.key_id if principal else None,
            actor_user_id=principal.user_id if principal else None)
        with self.db.session() as s:
            s.add(event)
            s.commit()

    async def arecord(self, principal: Principal | None, action: str, resource_type: str | None = None,
                      resource_id: str | None = None, address: str | None = None, detail: dict | None = None,
                      workspace_id: str | None = None) -> None:
        """`record`, from async code: the write runs in a worker thread, so the event loop keeps serving
        while the database is slow or locked; it is done when this returns (audit before answering)."""
        await asyncio.to_thread(self.record, principal, action, resource_type, resource_id, address, detail,
                                workspace_id)

    def events(self, workspace_id: str | None = None, since: datetime | None = None,
               limit: int = 100) -> list[AuditEvent]:
        query = select(AuditEvent).order_by(AuditEvent.id.desc()).limit(limit)
        if workspace_id is not None:
            query = query.where(AuditEvent.workspace_id == workspace_id)
        if since is not None:
            query = query.where(AuditEvent.at >= since)
        with self.db.session() as s:
            return list(s.scalars(query))
