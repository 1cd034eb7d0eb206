"""The tools one response offers the model: platform tools, client functions, handoffs.

    toolset = await ToolsetResolver(providers).resolve(principal, tools, handoff_agents)
    ChatRequest(..., tools=toolset.definitions())

Mistral's tool entries (dicts as sent or stored) become, by type: `function` a client function
(the call is handed back to the client); `document_library`, `connector` the platform tools of
their provider; web_search, code_interpreter, image_generation a 400 naming `tools.N.type` (this
server has none). Each handoff agent becomes one function `handoff_to_<agent name>`. Every
function name offered must be unique: a clash is a 400 naming the tool.
"""

import re
import unicodedata
from dataclasses import dataclass, field

from plateforme.agent_tools.base import PlatformTool, ToolProvider, ToolSpecError

BUILT_IN = ("web_search", "web_search_premium", "code_interpreter", "image_generation")
NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
HANDOFF_PREFIX = "handoff_to_"


@dataclass
class Toolset:
    platform: dict[str, PlatformTool] = field(default_factory=dict)  # by function name
    functions: list[dict] = field(default_factory=list)  # client function tools (OpenAI definitions)
    handoffs: dict = field(default_factory=dict)  # handoff function name -> agents.registry.AgentRecord

    def definitions(self) -> list[dict]:
        """Every function offered to the model (ChatRequest.tools), platform tools first."""
        out = [tool.definition() for tool in self.platform.values()]
        out += self.functions
        out += [handoff_definition(name, agent) for name, agent in self.handoffs.items()]
        return out

    def __bool__(self) -> bool:
        return bool(self.platform or self.functions or self.handoffs)


def handoff_name(agent_name: str) -> str:
    """The function that hands the conversation to the agent named `agent_name`."""
    plain = unicodedata.normalize("NFKD", agent_name).encode("ascii", "ignore").decode()  # É -> E
    slug = re.sub(r"[^a-zA-Z0-9_-]+", "_", plain).strip("_").lower() or "agent"
    return (HANDOFF_PREFIX + slug)[:64]


def handoff_definition(name: str, agent) -> dict:
    about = agent.body.get("description") or agent.body.get("instructions") or ""
    description = f"Hand the conversation over to the agent {agent.name!r}"
    description += f": {about[:300]}" if about else "."
    return {"type": "function", "function": {"name": name, "description": description,
                                             "parameters": {"type": "object", "properties": {}}}}


def _function(spec: dict, param: str) -> dict:
    function = spec.get("function")
    if not isinstance(function, dict) or not isinstance(function.get("name"), str):
        raise ToolSpecError(f"{param}.function: a function tool needs a function with a name", f"{param}.function")
    if not NAME.match(function["name"]):
        raise ToolSpecError(f"{param}.function.name: {function['name']!r}; a function name is 1 to 64 letters, "
                            "digits, _ or -", f"{param}.function.name")
    definition = {"name": function["name"], "description": function.get("description") or "",
                  "parameters": function.get("parameters") or {"type": "object", "properties": {}}}
    return {"type": "function", "function": definition}


class ToolsetResolver:
    def __init__(self, providers: dict[str, ToolProvider]):
        """`providers`: by Mistral tool type ("document_library", "connector")."""
        self.providers = providers

    async def resolve(self, principal, tools: list[dict] | None, handoffs: list | None = None,
                      param: str = "tools") -> Toolset:
        """The toolset of `tools` (Mistral tool dicts) and `handoffs` (agents.registry.AgentRecord
        of the agents the answering agent may hand over to). Raises ToolSpecError naming the field."""
        toolset = Toolset()
        where: dict[str, str] = {}  # function name -> the field that offered it

        def claim(name: str, at: str) -> None:
            if name in where:
                raise ToolSpecError(f"{at}: function name {name!r} is already offered by {where[name]}; "
                                    "every tool offered to the model needs its own name", at)
            where[name] = at

        for i, spec in enumerate(tools or []):
            at = f"{param}.{i}"
            if hasattr(spec, "model_dump"):
                spec = spec.model_dump(exclude_none=True)
            kind = spec.get("type") if isinstance(spec, dict) else None
            if kind in BUILT_IN:
                raise ToolSpecError(f"{at}.type: {kind!r} is one of Mistral's hosted tools, which this server "
                                    "does not run; use document_library, a connector, or a function tool",
                                    f"{at}.type")
            if kind == "function":
                definition = _function(spec, at)
                claim(definition["function"]["name"], f"{at}.function.name")
                toolset.functions.append(definition)
                continue
            provider = self.providers.get(kind)
            if provider is None:
                raise ToolSpecError(f"{at}.type: unknown tool type {kind!r}; this server runs function, "
                                    + ", ".join(sorted(self.providers)), f"{at}.type")
            for tool in await provider.tools(principal, spec, at):
                claim(tool.name, at)
                toolset.platform[tool.name] = tool
        for i, agent in enumerate(handoffs or []):
            name = handoff_name(agent.name)
            if name in where:  # two agents whose names read the same: tell them apart by id
                name = f"{name[:64 - len(agent.id) - 1]}_{agent.id}"[:64]
            claim(name, f"handoffs.{i}")
            toolset.handoffs[name] = agent
        return toolset
