"""Who answers a conversation's response: an agent (at a version) or a bare model, with its tools.

An agent's model, instructions, tools, completion_args, guardrails and handoffs come from its
version's body; a bare model's from the conversation. The request's completion_args are laid
over the agent's, its guardrails added to the agent's. Resolving the tools (ToolSpecError) and
parsing the guardrails (GuardrailConfigError) are the 400s of a response, raised before it runs.
"""

import asyncio
from dataclasses import dataclass

from plateforme.agent_tools.citations import with_citing_instruction
from plateforme.agent_tools.toolset import Toolset, ToolsetResolver
from plateforme.agents.errors import BadInput, NotFound
from plateforme.chat.types import ChatRequest
from plateforme.guardrails.config import GuardrailRule, parse_guardrails

CITING_TOOLS = ("document_library",)  # entry names of the tools whose results the answer cites as [n]


@dataclass
class Persona:
    agent: object | None  # agents.registry.AgentRecord, or None for a bare model
    model: str
    instructions: str | None
    completion_args: dict
    guardrails: list[GuardrailRule]
    toolset: Toolset

    @property
    def agent_id(self) -> str | None:
        return self.agent.id if self.agent is not None else None

    @property
    def agent_name(self) -> str | None:
        return self.agent.name if self.agent is not None else None

    def system_prompt(self) -> str | None:
        if any(t.entry_name in CITING_TOOLS for t in self.toolset.platform.values()):
            return with_citing_instruction(self.instructions)
        return self.instructions

    def chat_request(self, messages: list[dict], tool_choice: str, max_tokens: int | None) -> ChatRequest:
        args = self.completion_args
        stop = args.get("stop")
        stop = [stop] if isinstance(stop, str) else list(stop or [])
        tools = self.toolset.definitions() or None
        return ChatRequest(
            model=self.model, messages=messages, max_tokens=max_tokens, temperature=args.get("temperature"),
            top_p=args.get("top_p"), stop=stop, seed=args.get("random_seed"),
            presence_penalty=args.get("presence_penalty"), frequency_penalty=args.get("frequency_penalty"),
            tools=tools, tool_choice=tool_choice if tools else "auto", json_schema=_json_schema(args),
            prediction=(args.get("prediction") or {}).get("content") or None,
            reasoning_effort=args.get("reasoning_effort"), guardrails=self.guardrails or None)


def _json_schema(args: dict) -> dict | None:
    fmt = args.get("response_format") or {}
    if fmt.get("type") == "json_object":
        return {}
    if fmt.get("type") == "json_schema":
        schema = fmt.get("json_schema") or {}
        return schema.get("schema", schema.get("schema_")) or {}
    return None


def _dict(value) -> dict:
    if value is None:
        return {}
    if hasattr(value, "model_dump"):
        return value.model_dump(exclude_none=True, by_alias=True)
    return {k: v for k, v in dict(value).items() if v is not None}


async def _handoff_agents(agents, principal, agent) -> list:
    out = []
    for agent_id in agent.body.get("handoffs") or []:
        try:
            out.append(await asyncio.to_thread(agents.get, principal.workspace_id, agent_id))
        except NotFound:
            raise BadInput(f"handoffs: agent {agent.name!r} ({agent.id}) hands off to {agent_id!r}, which is not an "
                           "agent of this workspace any more; update the agent's handoffs", "handoffs") from None
    return out


async def resolve_persona(resolver: ToolsetResolver, agents, principal, agent, *, model: str | None = None,
                          instructions: str | None = None, tools: list | None = None,
                          completion_args=None, guardrails: list | None = None) -> Persona:
    """The persona of `agent` (an AgentRecord) or, when None, of the bare `model` with its own
    instructions and tools. `completion_args` and `guardrails`: the request's, over the agent's."""
    if agent is not None:
        body = agent.body
        model, instructions, tools = body["model"], body.get("instructions"), body.get("tools")
        args = {**_dict(body.get("completion_args")), **_dict(completion_args)}
        rules = list(body.get("guardrails") or []) + list(guardrails or [])
        handoffs = await _handoff_agents(agents, principal, agent)
    else:
        if not model:
            raise BadInput("model: a conversation needs an agent_id or a model", "model")
        args, rules, handoffs = _dict(completion_args), list(guardrails or []), []
    toolset = await resolver.resolve(principal, tools or [], handoffs)
    return Persona(agent, model, instructions, args, parse_guardrails(rules) if rules else [], toolset)
