"""Tools the platform runs for agents and conversations (document libraries, databases, MCP servers)."""
