"""Agents: named, versioned assistant definitions (model, instructions, tools, handoffs) per workspace."""
