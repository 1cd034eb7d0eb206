"""Admin API: the MCP servers of a workspace (connectors of kind "mcp"), admin keys only.

    POST   /v1/admin/workspaces/{id}/mcp-servers               register (the server is started and
                                                               its tools listed first)
    GET    /v1/admin/workspaces/{id}/mcp-servers               list
    GET    /v1/admin/workspaces/{id}/mcp-servers/{name}        one, by name or id
    DELETE /v1/admin/workspaces/{id}/mcp-servers/{name}        remove (its session is closed)
    GET    /v1/admin/workspaces/{id}/mcp-servers/{name}/tools  the tools the live server lists

A server that does not start or answer is a 400 at registration and a 502 on /tools, naming the cause.
"""

import uuid

from fastapi import APIRouter, Body, Depends, Request
from starlette.concurrency import run_in_threadpool

from plateforme.agents.errors import AgentsError, Conflict, NotFound
from plateforme.api.auth import require_admin
from plateforme.api.schemas.mcp import McpServerIn
from plateforme.connectors.mcp_client import McpUnavailable
from plateforme.connectors.mcp_config import check_timeout, parse_config
from plateforme.connectors.mcp_tools import function_name
from plateforme.connectors.store import ConnectorRecord, check_name

router = APIRouter(prefix="/v1/admin/workspaces/{workspace_id}/mcp-servers", dependencies=[Depends(require_admin)])


def _out(record: ConnectorRecord) -> dict:
    return {"id": record.id, "object": "mcp_server", "name": record.name, "description": record.description,
            "workspace_id": record.workspace_id, "created_at": int(record.created_at.timestamp()),
            "updated_at": int(record.updated_at.timestamp()), **record.config}


def _tools_out(connector: str, tools, confirm: list[str]) -> list[dict]:
    taken: set[str] = set()
    out = []
    for tool in tools:
        name = function_name(connector, tool.name, taken)
        taken.add(name)
        out.append({"name": tool.name, "function_name": name, "entry_name": f"{connector}.{tool.name}",
                    "description": tool.description, "input_schema": tool.input_schema,
                    "requires_confirmation": tool.name in confirm})
    return out


async def _workspace_id(request: Request, workspace_id: str) -> str:
    return (await run_in_threadpool(request.app.state.accounts.workspace, workspace_id)).id


async def _audit(request: Request, action: str, record: ConnectorRecord) -> None:
    address = request.client.host if request.client else None
    await request.app.state.audit.arecord(request.state.principal, action, "connector", record.id, address,
                                          {"name": record.name, "kind": "mcp",
                                           "transport": record.config.get("transport")},
                                          workspace_id=record.workspace_id)


@router.post("")
async def register(workspace_id: str, request: Request, body: McpServerIn = Body()) -> dict:
    state = request.app.state
    ws = await _workspace_id(request, workspace_id)
    check_name(body.name)
    config = parse_config(body.config())
    check_timeout(config, state.settings.mcp_timeout_s)
    try:
        await run_in_threadpool(state.connectors.get, ws, body.name)
        raise Conflict(f"name: this workspace already has a connector named {body.name!r}; delete it first or "
                       "choose another name", "name")
    except NotFound:
        pass
    mcp_tools = state.agent_parts.mcp_tools
    trial = f"trial:{uuid.uuid4()}"
    tools = await mcp_tools.trial(trial, body.name, config)
    try:
        record = await run_in_threadpool(state.connectors.add, ws, body.name, "mcp", body.description, body.config())
    except BaseException:
        mcp_tools.forget(trial)
        raise
    mcp_tools.adopt(trial, record.id)
    await _audit(request, "mcp_server.create", record)
    return {**_out(record), "tools": _tools_out(record.name, tools, config.requires_confirmation)}


@router.get("")
async def list_servers(workspace_id: str, request: Request) -> dict:
    ws = await _workspace_id(request, workspace_id)
    records = await run_in_threadpool(request.app.state.connectors.list, ws, "mcp")
    return {"object": "list", "data": [_out(r) for r in records]}


@router.get("/{name}")
async def get_server(workspace_id: str, name: str, request: Request) -> dict:
    ws = await _workspace_id(request, workspace_id)
    return _out(await run_in_threadpool(request.app.state.connectors.get, ws, name, "mcp"))


@router.delete("/{name}")
async def delete_server(workspace_id: str, name: str, request: Request) -> dict:
    state = request.app.state
    ws = await _workspace_id(request, workspace_id)
    record = await run_in_threadpool(state.connectors.delete, ws, name, "mcp")
    state.agent_parts.mcp_tools.forget(record.id)
    await _audit(request, "mcp_server.delete", record)
    return {"id": record.id, "object": "mcp_server", "name": record.name, "deleted": True}


@router.get("/{name}/tools")
async def server_tools(workspace_id: str, name: str, request: Request) -> dict:
    state = request.app.state
    ws = await _workspace_id(request, workspace_id)
    record = await run_in_threadpool(state.connectors.get, ws, name, "mcp")
    try:
        tools = await state.agent_parts.mcp_tools.server_tools(record)
    except McpUnavailable as e:
        raise AgentsError(502, f"{e}; check the server (GET this route again once it is fixed)", "name") from None
    confirm = parse_config(record.config).requires_confirmation
    return {"object": "list", "data": _tools_out(record.name, tools, confirm)}
