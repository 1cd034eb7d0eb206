"""How a call to an MCP server fails, apart from the client (connectors/mcp_client.py), so that
the gateway can name these failures without importing the `mcp` package (about 1.5 s) at start."""


class McpUnavailable(Exception):
    """The server could not be used: it did not start, hung, died, or the connection failed."""


class McpTimeout(McpUnavailable):
    """A request ran past its bound."""


class McpRefused(Exception):
    """The server answered the request with a JSON-RPC error (an unknown tool, invalid arguments)."""
