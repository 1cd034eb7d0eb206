"""Admin API: the databases of a workspace (connectors of kind "database"), admin keys only.

    POST   /v1/admin/workspaces/{id}/databases          register (the connection is tried and every
                                                        listed table and column checked first)
    GET    /v1/admin/workspaces/{id}/databases          list
    GET    /v1/admin/workspaces/{id}/databases/{name}   one, by name or id
    DELETE /v1/admin/workspaces/{id}/databases/{name}   remove

Agents use a registered database as `{"type": "connector", "connector_id": "<name>"}`
(connectors/database_tools.py). The URL is stored as given: its `${VAR}` placeholders are
resolved from the server's environment at each connection, never stored resolved.
"""

from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool

from plateforme.agents.errors import Conflict, NotFound
from plateforme.api.auth import require_admin
from plateforme.api.schemas.databases import DatabaseIn
from plateforme.connectors.database_config import parse_database_config
from plateforme.connectors.database_reader import DatabaseReader
from plateforme.connectors.store import ConnectorRecord, check_name

router = APIRouter(prefix="/v1/admin/workspaces/{workspace_id}/databases", dependencies=[Depends(require_admin)])


def _out(record: ConnectorRecord) -> dict:
    return {"id": record.id, "object": "database", "name": record.name, "description": record.description,
            "workspace_id": record.workspace_id, "dialect": "sqlite" if record.config["url"].startswith("sqlite:")
            else "postgresql", "created_at": int(record.created_at.timestamp()),
            "updated_at": int(record.updated_at.timestamp()), **record.config}


async def _workspace_id(request: Request, workspace_id: str) -> str:
    return (await run_in_threadpool(request.app.state.accounts.workspace, workspace_id)).id


async def _audit(request: Request, action: str, record: ConnectorRecord) -> None:
    address = request.client.host if request.client else None
    await request.app.state.audit.arecord(request.state.principal, action, "connector", record.id, address,
                                          {"name": record.name, "kind": "database",
                                           "tables": sorted(record.config.get("tables", {}))},
                                          workspace_id=record.workspace_id)


@router.post("")
async def register(workspace_id: str, body: DatabaseIn, request: Request) -> dict:
    state = request.app.state
    ws = await _workspace_id(request, workspace_id)
    check_name(body.name)
    config = parse_database_config(body.config(), state.settings)
    try:
        await run_in_threadpool(state.connectors.get, ws, body.name)
        raise Conflict(f"name: this workspace already has a connector named {body.name!r}; delete it first or "
                       "choose another name", "name")
    except NotFound:
        pass
    warnings = await DatabaseReader(config).check()
    record = await run_in_threadpool(state.connectors.add, ws, body.name, "database", body.description,
                                     config.as_stored())
    await _audit(request, "database.create", record)
    return {**_out(record), "warnings": warnings}


@router.get("")
async def list_databases(workspace_id: str, request: Request) -> dict:
    ws = await _workspace_id(request, workspace_id)
    records = await run_in_threadpool(request.app.state.connectors.list, ws, "database")
    return {"object": "list", "data": [_out(r) for r in records]}


@router.get("/{name}")
async def get_database(workspace_id: str, name: str, request: Request) -> dict:
    ws = await _workspace_id(request, workspace_id)
    return _out(await run_in_threadpool(request.app.state.connectors.get, ws, name, "database"))


@router.delete("/{name}")
async def delete_database(workspace_id: str, name: str, request: Request) -> dict:
    ws = await _workspace_id(request, workspace_id)
    record = await run_in_threadpool(request.app.state.connectors.delete, ws, name, "database")
    await _audit(request, "database.delete", record)
    return {"id": record.id, "object": "database", "name": record.name, "deleted": True}
