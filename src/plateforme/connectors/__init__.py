"""Connectors an admin registers for a workspace: database connections and MCP servers."""
