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

from plateforme.agents.errors import AgentsError
from plateforme.api.auth import require_admin
from plateforme.api.routes.connector_admin import audit_connector, connector_out, workspace_of
from plateforme.api.schemas.mcp import McpServerIn
from plateforme.connectors.mcp_errors import McpUnavailable
from plateforme.connectors.mcp_config import check_timeout, parse_config
from plateforme.connectors.mcp_tools import function_name
from plateforme.connectors.store import ConnectorRecord

router = APIRouter(prefix="/v1/admin/workspaces/{workspace_id}/mcp-servers", dependencies=[Depends(require_admin)])


def _out(record: ConnectorRecord) -> dict:
    return {**connector_out(record, "mcp_server"), **record.config}


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


async def _audit(request: Request, action: str, record: ConnectorRecord) -> None:
    await audit_connector(request, action, record, {"transport": record.config.get("transport")})


@router.post("")
async def register(workspace_id: str, request: Request, body: McpServerIn = Body()) -> dict:
    state = request.app.state
    ws = await workspace_of(request, workspace_id)
    config = parse_config(body.config())
    check_timeout(config, state.settings.mcp_timeout_s)
    await run_in_threadpool(state.connectors.check_free, ws, body.name)
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
    ws = await workspace_of(request, workspace_id)
    records = await run_in_threadpool(request.app.state.connectors.list, ws, "mcp")
    return {"object": "list", "data": [_out(r) for r in records]}


@router.get("/{name}")
async def get_server(workspace_id: str, name: str, request: Request) -> dict:
    ws = await workspace_of(request, workspace_id)
    return _out(await run_in_threadpool(request.app.state.connectors.get, ws, name, "mcp"))


@router.delete("/{name}")
async def delete_server(workspace_id: str, name: str, request: Request) -> dict:
    state = request.app.state
    ws = await workspace_of(request, workspace_id)
    record = await run_in_threadpool(state.connectors.delete, ws, name, "mcp")
    state.agent_parts.mcp_tools.forget(record.id)
    await _audit(request, "mcp_server.delete", record)
    return {"id": record.id, "object": "mcp_server", "name": record.name, "deleted": True}


@router.get("/{name}/tools")
async def server_tools(workspace_id: str, name: str, request: Request) -> dict:
    state = request.app.state
    ws = await workspace_of(request, workspace_id)
    record = await run_in_threadpool(state.connectors.get, ws, name, "mcp")
    try:
        tools = await state.agent_parts.mcp_tools.server_tools(record)
    except McpUnavailable as e:
        raise AgentsError(502, f"{e}; check the server (GET this route again once it is fixed)", "name") from None
    confirm = parse_config(record.config).requires_confirmation
    return {"object": "list", "data": _tools_out(record.name, tools, confirm)}
