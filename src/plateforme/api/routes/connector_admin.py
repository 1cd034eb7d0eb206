"""What the admin routes of a workspace's connectors share (admin_databases.py, admin_mcp.py): the
workspace named in the path, the answer's common fields, the audit record."""

from fastapi import Request
from starlette.concurrency import run_in_threadpool

from plateforme.connectors.store import ConnectorRecord


async def workspace_of(request: Request, workspace_id: str) -> str:
    """The id of the workspace in the path (404 when there is none)."""
    return (await run_in_threadpool(request.app.state.accounts.workspace, workspace_id)).id


def connector_out(record: ConnectorRecord, kind: str) -> dict:
    return {"id": record.id, "object": kind, "name": record.name, "description": record.description,
            "workspace_id": record.workspace_id, "created_at": int(record.created_at.timestamp()),
            "updated_at": int(record.updated_at.timestamp())}


async def audit_connector(request: Request, action: str, record: ConnectorRecord, detail: dict) -> None:
    address = request.client.host if request.client else None
    await request.app.state.audit.arecord(request.state.principal, action, "connector", record.id, address,
                                          {"name": record.name, "kind": record.kind, **detail},
                                          workspace_id=record.workspace_id)
