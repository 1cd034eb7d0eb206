"""The tools of an MCP connector: the server's tools, called over stdio or streamable HTTP.

OWNER: engineer F (issue 14). Skeleton committed by the lead to pin the interface.
"""

from plateforme.agent_tools.base import PlatformTool


class McpTools:
    def __init__(self, settings):
        self.settings = settings

    async def tools(self, principal, connector, spec: dict, param: str) -> list[PlatformTool]:
        raise NotImplementedError("engineer F")

    async def close(self) -> None:
        """Stop the MCP sessions this gateway holds open."""
