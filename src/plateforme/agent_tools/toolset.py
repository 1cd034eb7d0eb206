"""The tools one response offers the model: platform tools, client functions, handoffs.

OWNER: engineer C (issue 14). Skeleton committed by the lead to pin the interface.
"""

from dataclasses import dataclass, field

from plateforme.agent_tools.base import PlatformTool, ToolProvider


@dataclass
class Toolset:
    platform: dict[str, PlatformTool] = field(default_factory=dict)  # by function name
    functions: list[dict] = field(default_factory=list)  # client function tools (OpenAI definitions)
    handoffs: dict = field(default_factory=dict)  # handoff function name -> agents.registry.AgentRecord


class ToolsetResolver:
    def __init__(self, providers: dict[str, ToolProvider]):
        """`providers`: by Mistral tool type ("document_library", "connector")."""
        self.providers = providers

    async def resolve(self, principal, tools: list[dict], handoffs: list) -> Toolset:
        raise NotImplementedError("engineer C")
