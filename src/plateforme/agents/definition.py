"""Checks of an agent's definition that its shape alone does not make: tools this server can run,
unique function names, guardrails that parse. Each failure is a BadInput naming the field."""

from plateforme.agents.errors import BadInput
from plateforme.guardrails.config import GuardrailConfigError, parse_guardrails

# Mistral's hosted tools: this server has none of them (no web search, sandbox or image model).
BUILT_IN = ("web_search", "web_search_premium", "code_interpreter", "image_generation")
PLATFORM = ("document_library", "connector")


def check_tools(tools: list[dict], param: str = "tools") -> None:
    names: dict[str, int] = {}
    for i, tool in enumerate(tools):
        kind = tool.get("type")
        if kind in BUILT_IN:
            raise BadInput(f"{param}.{i}.type: {kind!r} is one of Mistral's hosted tools, which this server does "
                           "not run; use a function, document_library or connector tool instead",
                           f"{param}.{i}.type")
        if kind == "function":
            name = tool["function"]["name"]
            if name in names:
                raise BadInput(f"{param}.{i}.function.name: {name!r} is already the name of {param}.{names[name]}; "
                               "function names must be unique", f"{param}.{i}.function.name")
            names[name] = i


def check_guardrails(guardrails: list | None) -> None:
    try:
        parse_guardrails(guardrails)
    except GuardrailConfigError as exc:
        raise BadInput(str(exc), exc.param) from None


def check_definition(body: dict) -> None:
    """BadInput when `body` (Mistral's agent fields) names something this server cannot run."""
    check_tools(body.get("tools") or [])
    check_guardrails(body.get("guardrails"))


def has_platform_tools(tools: list[dict] | None) -> bool:
    return any(tool.get("type") in PLATFORM for tool in tools or [])
