"""Agents, conversations, their tools and connectors, assembled for the app (create_app).

    parts = build_agents(settings, db, pipeline, engines, library_search, url_signer)
    await parts.start()   # conversations cut off by a stop are marked failed
    ...
    await parts.close()   # MCP sessions closed
"""

import asyncio
import logging
from dataclasses import dataclass

from plateforme.agent_tools.document_library import DocumentLibraryTools
from plateforme.agent_tools.toolset import ToolsetResolver
from plateforme.agents.registry import AgentRegistry
from plateforme.connectors.database_tools import DatabaseTools
from plateforme.connectors.mcp_tools import McpTools
from plateforme.connectors.store import ConnectorStore
from plateforme.connectors.tool_provider import ConnectorTools
from plateforme.conversations.limits import LoopLimits
from plateforme.conversations.loop import ConversationLoop
from plateforme.conversations.service import ConversationService
from plateforme.conversations.store import ConversationStore
from plateforme.storage.runner_identity import runner_id

log = logging.getLogger("plateforme.agents")


@dataclass
class AgentParts:
    agents: AgentRegistry
    connectors: ConnectorStore
    database_tools: DatabaseTools
    mcp_tools: McpTools
    conversations: ConversationService

    async def start(self) -> None:
        failed = await asyncio.to_thread(self.conversations.store.fail_interrupted)
        if failed:
            log.warning("%d conversation(s) were cut off mid-response by a stop: marked failed", failed)

    async def close(self) -> None:
        await self.mcp_tools.close()


def build_agents(settings, db, pipeline, engines, library_search, url_signer) -> AgentParts:
    """`engines`: the app's generation.engine_resolution.EngineResolver."""
    agents = AgentRegistry(db)
    connectors = ConnectorStore(db)
    database_tools, mcp_tools = DatabaseTools(settings), McpTools(settings)
    resolver = ToolsetResolver({
        "document_library": DocumentLibraryTools(library_search, url_signer, pipeline.billing),
        "connector": ConnectorTools(connectors, {"database": database_tools, "mcp": mcp_tools}),
    })
    loop = ConversationLoop(pipeline, resolver, agents, LoopLimits.from_settings(settings))
    store = ConversationStore(db, runner_id(settings.data_dir))
    return AgentParts(agents, connectors, database_tools, mcp_tools, ConversationService(store, loop, agents, engines))
