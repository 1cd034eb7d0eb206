"""Mistral's `tool_configuration` of a tool entry: which of its tools to offer (include, exclude)
and which need the client's confirmation before they run (requires_confirmation)."""

from dataclasses import replace

from plateforme.agent_tools.base import PlatformTool


def _names(tool: PlatformTool) -> set[str]:
    """The names a configuration may use for a tool: the model's, the entry's, and its short name."""
    return {tool.name, tool.entry_name, tool.entry_name.rsplit(".", 1)[-1]}


def configured(tools: list[PlatformTool], configuration: dict | None,
               confirm: list[str] | tuple[str, ...] = ()) -> list[PlatformTool]:
    """`tools` filtered by `configuration` (a ToolConfiguration dict or None), each marked as
    requiring confirmation when the configuration or `confirm` (the admin's list) names it."""
    configuration = configuration or {}
    include, exclude = configuration.get("include"), configuration.get("exclude") or []
    confirmed = set(configuration.get("requires_confirmation") or []) | set(confirm)
    out = []
    for tool in tools:
        names = _names(tool)
        if include is not None and not names & set(include):
            continue
        if names & set(exclude):
            continue
        if names & confirmed and not tool.requires_confirmation:
            tool = replace(tool, requires_confirmation=True)
        out.append(tool)
    return out
