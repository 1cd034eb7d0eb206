"""Mistral's `{"type": "connector", "connector_id": ...}` tool: the workspace's connector of that
id or name, handed to the provider of its kind (database, mcp) for the tools it offers."""

import asyncio
from typing import Protocol

from plateforme.agent_tools.base import PlatformTool, ToolSpecError
from plateforme.agents.errors import NotFound
from plateforme.connectors.store import ConnectorRecord, ConnectorStore
from plateforme.tenancy.principal import Principal


class ConnectorKindTools(Protocol):
    async def tools(self, principal: Principal, connector: ConnectorRecord, spec: dict,
                    param: str) -> list[PlatformTool]:
        """The tools of one registered connector for the tool entry `spec`; raises ToolSpecError."""
        ...


class ConnectorTools:
    def __init__(self, store: ConnectorStore, kinds: dict[str, ConnectorKindTools]):
        self.store = store
        self.kinds = kinds

    async def tools(self, principal: Principal, spec: dict, param: str) -> list[PlatformTool]:
        name = spec.get("connector_id")
        try:
            connector = await asyncio.to_thread(self.store.get, principal.workspace_id, name)
        except NotFound:
            raise ToolSpecError(f"{param}.connector_id: no connector {name!r} in this workspace; an admin "
                                "registers database connections and MCP servers for it (docs/connectors.md)",
                                f"{param}.connector_id") from None
        kind = self.kinds.get(connector.kind)
        if kind is None:
            raise ToolSpecError(f"{param}.connector_id: connector {name!r} is a {connector.kind} connector, "
                                "which this server cannot run", f"{param}.connector_id")
        return await kind.tools(principal, connector, spec, param)
