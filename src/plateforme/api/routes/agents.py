"""The Agents API (Mistral's beta): /v1/agents create, list (and /pages), get, update (a new
version), delete, switch version, versions, aliases."""

import asyncio
import json
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from plateforme.agents.errors import BadInput
from plateforme.agents.listing import AgentFilters
from plateforme.agents.registry import AgentRegistry
from plateforme.agents.served_models import require_chat_model
from plateforme.api.schemas.agents import (Agent, AgentAliasResponse, AgentListPage, CreateAgentRequest,
                                           UpdateAgentRequest, agent_response, alias_response)

router = APIRouter()
ALIAS = r"^[a-z]([a-z0-9_-]*[a-z0-9])?$"
Source = "api", "playground", "agent_builder_v1"
# What the mistralai SDK (3.x) sends as `metadata` when the caller gives none: its UNSET marker,
# JSON-encoded. It means no metadata filter.
SDK_UNSET = "~?~unset~?~sentinel~?~"


def _agents(request: Request) -> AgentRegistry:
    return request.app.state.agents


def _workspace(request: Request) -> str:
    return request.state.principal.workspace_id


def _filters(deployment_chat, sources, name, search, id, metadata) -> AgentFilters:
    parsed = None
    if metadata is not None:
        try:
            parsed = json.loads(metadata)
        except ValueError:
            parsed = None
        if parsed == SDK_UNSET:
            parsed = {}
        if not isinstance(parsed, dict):
            raise BadInput('metadata: expected a JSON object, e.g. metadata={"team": "sales"}', "metadata")
    for i, source in enumerate(sources or []):
        if source not in Source:
            raise BadInput(f"sources.{i}: {source!r} is not a source; use one of {', '.join(Source)}", "sources")
    return AgentFilters(name=name, search=search, id=id, metadata=parsed or None, sources=sources,
                        deployment_chat=deployment_chat)


async def _check_model(request: Request, model: str | None) -> None:
    if model is not None:
        await require_chat_model(request.app.state.engines, _workspace(request), model)


@router.post("/v1/agents", response_model=Agent)
async def create_agent(request: Request, body: CreateAgentRequest) -> Agent:
    await _check_model(request, body.model)
    record = await asyncio.to_thread(_agents(request).create, _workspace(request), body.body())
    return agent_response(record)


@router.get("/v1/agents", response_model=list[Agent])
async def list_agents(request: Request, page: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
                      page_size: Annotated[int, Query(ge=1, le=1000)] = 20,
                      deployment_chat: bool | None = None, sources: Annotated[list[str] | None, Query()] = None,
                      name: str | None = None, search: str | None = None, id: str | None = None,
                      metadata: str | None = None) -> list[Agent]:
    filters = _filters(deployment_chat, sources, name, search, id, metadata)
    found = await asyncio.to_thread(_agents(request).list, _workspace(request), filters, page, page_size)
    return [agent_response(a) for a in found]


@router.get("/v1/agents/pages", response_model=AgentListPage)
async def list_agent_pages(request: Request, page_size: Annotated[int, Query(ge=1, le=1000)] = 20,
                           deployment_chat: bool | None = None,
                           sources: Annotated[list[str] | None, Query()] = None, name: str | None = None,
                           search: str | None = None, id: str | None = None, metadata: str | None = None,
                           page_token: str | None = None) -> AgentListPage:
    filters = _filters(deployment_chat, sources, name, search, id, metadata)
    found, token = await asyncio.to_thread(_agents(request).page, _workspace(request), filters, page_size,
                                           page_token)
    return AgentListPage(data=[agent_response(a) for a in found], next_page_token=token)


@router.get("/v1/agents/{agent_id}", response_model=Agent)
async def get_agent(request: Request, agent_id: str, agent_version: int | str | None = None) -> Agent:
    return agent_response(await asyncio.to_thread(_agents(request).get, _workspace(request), agent_id,
                                                  agent_version))


@router.patch("/v1/agents/{agent_id}", response_model=Agent)
async def update_agent(request: Request, agent_id: str, body: UpdateAgentRequest) -> Agent:
    await _check_model(request, body.model)
    record = await asyncio.to_thread(_agents(request).update, _workspace(request), agent_id, body.changes())
    return agent_response(record)


@router.delete("/v1/agents/{agent_id}", status_code=204)
async def delete_agent(request: Request, agent_id: str) -> Response:
    await asyncio.to_thread(_agents(request).delete, _workspace(request), agent_id)
    return Response(status_code=204)


@router.patch("/v1/agents/{agent_id}/version", response_model=Agent)
async def switch_agent_version(request: Request, agent_id: str, version: int) -> Agent:
    return agent_response(await asyncio.to_thread(_agents(request).switch_version, _workspace(request),
                                                  agent_id, version))


@router.get("/v1/agents/{agent_id}/versions", response_model=list[Agent])
async def list_agent_versions(request: Request, agent_id: str, page: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
                              page_size: Annotated[int, Query(ge=1, le=100)] = 20) -> list[Agent]:
    found = await asyncio.to_thread(_agents(request).versions, _workspace(request), agent_id, page, page_size)
    return [agent_response(a) for a in found]


@router.get("/v1/agents/{agent_id}/versions/{version}", response_model=Agent)
async def get_agent_version(request: Request, agent_id: str, version: str) -> Agent:
    return agent_response(await asyncio.to_thread(_agents(request).get, _workspace(request), agent_id, version))


@router.put("/v1/agents/{agent_id}/aliases", response_model=AgentAliasResponse)
async def set_agent_alias(request: Request, agent_id: str,
                          alias: Annotated[str, Query(min_length=1, max_length=64, pattern=ALIAS)],
                          version: int) -> AgentAliasResponse:
    return alias_response(await asyncio.to_thread(_agents(request).set_alias, _workspace(request), agent_id,
                                                  alias, version))


@router.get("/v1/agents/{agent_id}/aliases", response_model=list[AgentAliasResponse])
async def list_agent_aliases(request: Request, agent_id: str) -> list[AgentAliasResponse]:
    found = await asyncio.to_thread(_agents(request).aliases, _workspace(request), agent_id)
    return [alias_response(a) for a in found]


@router.delete("/v1/agents/{agent_id}/aliases", status_code=204)
async def delete_agent_alias(request: Request, agent_id: str,
                             alias: Annotated[str, Query(min_length=1, max_length=64, pattern=ALIAS)]) -> Response:
    await asyncio.to_thread(_agents(request).delete_alias, _workspace(request), agent_id, alias)
    return Response(status_code=204)
