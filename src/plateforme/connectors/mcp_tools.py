"""The tools of an MCP connector: the server's tools, offered to the model as platform tools.

`{"type": "connector", "connector_id": "shop"}` on an MCP connector gives the model every tool
the server lists (tools/list, live), each named `shop_<tool>` (sanitised to [a-zA-Z0-9_-], at most
64 characters) and recorded as the entry `shop.<tool>`. The admin's `requires_confirmation` and
the entry's `tool_configuration` (include, exclude, requires_confirmation) apply.

A call's content is the text the tool returned (its structured content as JSON when it returned
no text); `info` keeps the structured content and whether the server flagged an error. A tool
error, a refused call, a timeout or a server that died are a ToolOutcome with `error`: the model
reads the reason and the conversation goes on. A server that cannot be reached while the
toolset is resolved is a ToolSpecError (502) naming the connector and the cause.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import time
from typing import TYPE_CHECKING

from plateforme.agent_tools.base import PlatformTool, ToolContext, ToolOutcome, ToolSpecError
from plateforme.agent_tools.configuration import configured
from plateforme.agents.errors import BadInput
from plateforme.connectors.mcp_config import HttpServer, StdioServer, call_timeout, parse_config
from plateforme.connectors.mcp_errors import McpRefused, McpUnavailable
from plateforme.connectors.store import ConnectorRecord

if TYPE_CHECKING:  # imported where used: the `mcp` package takes ~1.5 s to import
    import mcp_types as types

log = logging.getLogger("plateforme.connectors.mcp")

_UNSAFE = re.compile(r"[^a-zA-Z0-9_-]")
MAX_NAME = 64
EMPTY_SCHEMA = {"type": "object", "properties": {}}


def function_name(connector: str, tool: str, taken: set[str]) -> str:
    """`<connector>_<tool>` as a function name the model may call: [a-zA-Z0-9_-]{1,64}, not in `taken`
    (a name cut short or made equal to another by the sanitising gets a hash of the original)."""
    name = _UNSAFE.sub("_", f"{connector}_{tool}")
    if len(name) > MAX_NAME or name in taken:
        digest = hashlib.sha1(f"{connector}\0{tool}".encode()).hexdigest()[:8]
        name = f"{name[:MAX_NAME - 9]}_{digest}"
    return name


def result_text(content: list) -> str:
    """What the model reads of a tool result's content blocks."""
    import mcp_types as types

    parts = []
    for block in content:
        if isinstance(block, types.TextContent):
            parts.append(block.text)
        elif isinstance(block, types.EmbeddedResource):
            resource = block.resource
            text = getattr(resource, "text", None)
            parts.append(text if text is not None else f"[resource {resource.uri} ({resource.mime_type or 'binary'})]")
        elif isinstance(block, types.ResourceLink):
            parts.append(f"[resource link {block.uri}: {block.name}]")
        else:  # image, audio: this platform's models read text only
            parts.append(f"[{getattr(block, 'type', 'content')} content ({getattr(block, 'mime_type', '?')}), "
                         "not shown to the model]")
    return "\n".join(parts)


def outcome(connector: str, tool: str, result: types.CallToolResult) -> ToolOutcome:
    text = result_text(result.content)
    if not text and result.structured_content is not None:
        text = json.dumps(result.structured_content, ensure_ascii=False)
    info = {"connector": connector, "tool": tool, "is_error": bool(result.is_error),
            "structured_content": result.structured_content}
    if result.is_error:
        reason = f"tool {tool!r} of connector {connector!r} failed: {text or 'no reason given'}"
        return ToolOutcome(content=reason, info={**info, "error": reason}, error=reason)
    return ToolOutcome(content=text, info=info)


def failed(connector: str, tool: str, reason: str) -> ToolOutcome:
    return ToolOutcome(content=reason, info={"connector": connector, "tool": tool, "is_error": True,
                                             "structured_content": None, "error": reason}, error=reason)


class McpTools:
    def __init__(self, settings):
        self.settings = settings
        self._client = None

    @property
    def client(self):
        """The sessions' client, made at first use: the `mcp` package is imported only by a gateway
        whose agents use MCP connectors."""
        if self._client is None:
            from plateforme.connectors.mcp_client import McpClient

            self._client = McpClient()
        return self._client

    def _timeout(self, config: StdioServer | HttpServer) -> float:
        return call_timeout(config, self.settings.mcp_timeout_s)

    async def server_tools(self, connector: ConnectorRecord) -> list[types.Tool]:
        """The tools the connector's server lists now; McpUnavailable or BadInput (a bad stored config)."""
        config = parse_config(connector.config)
        try:
            return await self.client.list_tools(connector.id, connector.name, config, self.settings.mcp_timeout_s,
                                                self._timeout(config))
        except McpRefused as e:
            raise McpUnavailable(str(e)) from None

    async def probe(self, key: str, name: str, config: StdioServer | HttpServer) -> list[types.Tool]:
        """Start a server not registered yet and list its tools; its session stays open under `key`
        (`adopt` hands it to the connector once stored, `forget` closes it)."""
        try:
            return await self.client.list_tools(key, name, config, self.settings.mcp_timeout_s, self._timeout(config))
        except McpRefused as e:
            raise McpUnavailable(str(e)) from None

    async def trial(self, key: str, name: str, config: StdioServer | HttpServer) -> list[types.Tool]:
        """`probe` for a registration: a server that does not start, or a requires_confirmation naming a
        tool it lacks, is a BadInput naming the field and the cause (and nothing is left open)."""
        try:
            tools = await self.probe(key, name, config)
        except McpUnavailable as e:
            self.forget(key)
            field = "command" if isinstance(config, StdioServer) else "url"
            raise BadInput(f"{e}; nothing was registered", field) from None
        unknown = sorted(set(config.requires_confirmation) - {t.name for t in tools})
        if unknown:
            self.forget(key)
            raise BadInput(f"requires_confirmation: the server has no tool {', '.join(map(repr, unknown))}; its "
                           f"tools are {', '.join(t.name for t in tools) or 'none'}", "requires_confirmation")
        return tools

    def adopt(self, key: str, connector_id: str) -> None:
        self.client.rename(key, connector_id)

    async def tools(self, principal, connector: ConnectorRecord, spec: dict, param: str) -> list[PlatformTool]:
        where = f"{param}.connector_id"
        if spec.get("authorization"):
            raise ToolSpecError(f"{param}.authorization: this server does not pass per-request credentials to MCP "
                                "servers; an admin sets them in the connector's env or headers as ${VAR} from the "
                                "platform's environment (docs/mcp.md); leave authorization out",
                                f"{param}.authorization")
        try:
            listed = await self.server_tools(connector)
            config = parse_config(connector.config)
        except BadInput as e:
            raise ToolSpecError(f"{where}: connector {connector.name!r} has a configuration this server cannot use "
                                f"({e}); an admin re-registers it", where) from None
        except McpUnavailable as e:
            raise ToolSpecError(f"{where}: {e}; the conversation needs its tools (fix the server, or leave the "
                                "connector out of the tools)", where, status=502) from None
        taken: set[str] = set()
        tools = []
        for tool in listed:
            name = function_name(connector.name, tool.name, taken)
            taken.add(name)
            tools.append(PlatformTool(
                name=name, description=tool.description or tool.title or f"{tool.name} ({connector.name})",
                parameters=tool.input_schema or EMPTY_SCHEMA, entry_name=f"{connector.name}.{tool.name}",
                run=self._runner(connector, config, tool.name),
                requires_confirmation=tool.name in config.requires_confirmation))
        return configured(tools, spec.get("tool_configuration"), confirm=config.requires_confirmation)

    def _runner(self, connector: ConnectorRecord, config: StdioServer | HttpServer, tool: str):
        async def run(arguments: dict, context: ToolContext) -> ToolOutcome:
            left = context.deadline - time.monotonic()
            timeout = min(self._timeout(config), left)
            if timeout <= 0:
                return failed(connector.name, tool, f"no time left to call tool {tool!r} of connector "
                              f"{connector.name!r}: the conversation's time bound (agent_max_seconds) is reached")
            try:
                result = await self.client.call_tool(connector.id, connector.name, config, tool, arguments or {},
                                                     min(self.settings.mcp_timeout_s, left), timeout)
            except (McpUnavailable, McpRefused) as e:
                log.warning("MCP tool %s.%s: %s", connector.name, tool, e)
                return failed(connector.name, tool, str(e))
            return outcome(connector.name, tool, result)

        return run

    def forget(self, connector_id: str) -> None:
        """Close the session of a connector that was deleted or changed."""
        self.client.forget(connector_id)

    async def close(self) -> None:
        """Stop the MCP sessions this gateway holds open."""
        if self._client is not None:
            await self._client.close()
