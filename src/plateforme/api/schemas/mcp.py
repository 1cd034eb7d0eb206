"""Admin API shapes of MCP connectors: an MCP server registered for a workspace.

The body is the connector's name and description beside its configuration
(connectors/mcp_config.py), told apart by `transport`:

    {"name": "shop", "transport": "stdio", "command": "python", "args": ["server.py"],
     "env": {"TOKEN": "${SHOP_TOKEN}"}, "requires_confirmation": ["delete_item"]}
    {"name": "crm", "transport": "streamable_http", "url": "https://crm.example.com/mcp",
     "headers": {"Authorization": "Bearer ${CRM_TOKEN}"}, "timeout_s": 10}
"""

from typing import Annotated

from pydantic import BaseModel, Field

from plateforme.connectors.mcp_config import HttpServer, StdioServer


class _Registration(BaseModel):
    name: str = Field(min_length=1, max_length=64)
    description: str | None = Field(default=None, max_length=2000)

    def config(self) -> dict:
        """What is stored: the configuration without the connector's name and description."""
        return self.model_dump(exclude={"name", "description"})


class StdioServerIn(_Registration, StdioServer):
    pass


class HttpServerIn(_Registration, HttpServer):
    pass


McpServerIn = Annotated[StdioServerIn | HttpServerIn, Field(discriminator="transport")]
