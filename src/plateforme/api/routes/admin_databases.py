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

from plateforme.api.auth import require_admin
from plateforme.api.routes.connector_admin import audit_connector, connector_out, workspace_of
from plateforme.api.schemas.databases import DatabaseIn
from plateforme.connectors.database_config import parse_database_config
from plateforme.connectors.database_reader import DatabaseReader
from plateforme.connectors.store import ConnectorRecord

router = APIRouter(prefix="/v1/admin/workspaces/{workspace_id}/databases", dependencies=[Depends(require_admin)])


def _out(record: ConnectorRecord) -> dict:
    dialect = "sqlite" if record.config["url"].startswith("sqlite:") else "postgresql"
    return {**connector_out(record, "database"), "dialect": dialect, **record.config}


async def _audit(request: Request, action: str, record: ConnectorRecord) -> None:
    await audit_connector(request, action, record, {"tables": sorted(record.config.get("tables", {}))})


@router.post("")
async def register(workspace_id: str, body: DatabaseIn, request: Request) -> dict:
    state = request.app.state
    ws = await workspace_of(request, workspace_id)
    config = parse_database_config(body.config(), state.settings)
    await run_in_threadpool(state.connectors.check_free, ws, body.name)
    warnings = await DatabaseReader(config).check()
    record = await run_in_threadpool(state.connectors.add, ws, body.name, "database", body.description,
                                     config.as_stored())
    await _audit(request, "database.create", record)
    return {**_out(record), "warnings": warnings}


@router.get("")
async def list_databases(workspace_id: str, request: Request) -> dict:
    ws = await workspace_of(request, workspace_id)
    records = await run_in_threadpool(request.app.state.connectors.list, ws, "database")
    return {"object": "list", "data": [_out(r) for r in records]}


@router.get("/{name}")
async def get_database(workspace_id: str, name: str, request: Request) -> dict:
    ws = await workspace_of(request, workspace_id)
    return _out(await run_in_threadpool(request.app.state.connectors.get, ws, name, "database"))


@router.delete("/{name}")
async def delete_database(workspace_id: str, name: str, request: Request) -> dict:
    ws = await workspace_of(request, workspace_id)
    record = await run_in_threadpool(request.app.state.connectors.delete, ws, name, "database")
    await _audit(request, "database.delete", record)
    return {"id": record.id, "object": "database", "name": record.name, "deleted": True}
