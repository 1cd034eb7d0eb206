"""One response of a conversation: the model, the tools it calls, handoffs, in a bounded loop.

    turn = Turn(principal, conversation_id, history=stored_entries, inputs=input_entries(req.inputs),
                agent=agent_record, completion_args=req_args, handoff_execution="server",
                tool_confirmations=req.tool_confirmations)
    prepared = await loop.prepare(turn)      # every 4xx, before anything is written or run
    async for item in loop.run(prepared):    # conversations/items.py: EventItem, EntryItem, DoneItem
        ...

`run` yields conversation.response.started, then for each model step (each through the
RequestPipeline: limits, usage, traces, guardrails) its message.output.delta events; each tool
call is answered: a platform tool is run (tool.execution.started/done, a ToolExecutionEntry) and
the model reads its result in the next step; a platform tool marked requires_confirmation, a
client function, or a handoff with handoff_execution "client" becomes a FunctionCallEntry and the
response stops (status "waiting") until the client appends the function.result entries or
tool_confirmations (allow: the tool runs then; deny: the model reads that it was denied); a
server-side handoff (agent.handoff.started/done, AgentHandoffEntry) continues with the next agent.
The answer is a MessageOutputEntry whose content cites the tools' references
(agent_tools/citations.py; its deltas carry the tool_reference chunks as they come). Then
conversation.response.done with the usage summed over the steps, and a DoneItem. A bound of
LoopLimits reached raises LoopBoundReached (conversations/limits.py) after the entries made so far
were yielded.

A forced tool_choice ("any", "required") applies to the first model step of a response started by
a user message only; later steps, and responses resuming on function results or confirmations,
use "auto" (else a forced model would call tools for ever).
"""

from contextlib import aclosing
from dataclasses import dataclass, field

from plateforme.agent_tools.base import PlatformTool, ToolContext, ToolOutcome
from plateforme.agents.errors import BadInput
from plateforme.conversations.entries import new_entry, new_entry_id, now_iso
from plateforme.conversations.items import DoneItem, EntryItem, EventItem
from plateforme.conversations.limits import ForcedCallCut, LoopBudget, LoopLimits
from plateforme.conversations.messages import chat_messages
from plateforme.conversations.pending import check_confirmations, check_results, pending_calls
from plateforme.conversations.persona import Persona, resolve_persona
from plateforme.conversations.step import ModelStep
from plateforme.conversations import tool_run
from plateforme.tenancy.principal import Principal

FORCED = ("any", "required")


@dataclass
class Turn:
    """What the service hands the loop for one response (start, append or restart)."""

    principal: Principal
    # The conversation's id (also when it is not stored: `store: false`), in the started event.
    conversation_id: str
    # The conversation's stored entries before this response, in order (Mistral's entry dicts).
    history: list[dict] = field(default_factory=list)
    # This request's input entries (entries.input_entries(req.inputs)); empty when the request
    # only answers tool_confirmations. The service persists them before running.
    inputs: list[dict] = field(default_factory=list)
    # The agent answering (agents.registry.AgentRecord at the version asked; after an earlier
    # server-side handoff, the conversation's active agent), or None for a bare model.
    agent: object | None = None
    # A bare model's conversation: its model, instructions and Mistral tool dicts (ignored with an agent).
    model: str | None = None
    instructions: str | None = None
    tools: list[dict] | None = None
    # The request's completion_args (a dict or CompletionArgs), laid over the answering agent's
    # own; for a bare model, the conversation's merged with the request's.
    completion_args: dict | None = None
    # The conversation's / request's guardrails (Mistral GuardrailConfig dicts), added to the agent's.
    guardrails: list | None = None
    handoff_execution: str = "server"  # "server" | "client"
    # [{"tool_call_id", "confirmation": "allow" | "deny"}] (dicts or pydantic models).
    tool_confirmations: list | None = None


@dataclass
class Prepared:
    turn: Turn
    persona: Persona
    # The pending calls this request confirms, in their order: (FunctionCallEntry, "allow" | "deny").
    confirmations: list[tuple[dict, str]]
    # Whether the first step keeps a forced tool_choice (a response started by a user message).
    forced: bool


class _Response:
    """The state of one response as it runs: what the model reads, what was made, what was used."""

    def __init__(self, turn: Turn, persona: Persona, budget: LoopBudget):
        self.turn, self.persona, self.budget = turn, persona, budget
        self.working = list(turn.history) + list(turn.inputs)
        self.outputs: list[dict] = []
        self.references: list[dict] = []
        self.guardrails: list[dict] = []
        self.prompt_tokens = self.completion_tokens = 0

    def add(self, entry: dict) -> EntryItem:
        self.outputs.append(entry)
        self.working.append(entry)
        return EntryItem(entry)

    def context(self, call_id: str) -> ToolContext:
        return ToolContext(self.turn.principal, self.turn.conversation_id, self.persona.agent_id,
                           self.persona.model, call_id, self.budget.deadline)

    def usage(self) -> dict:
        return {"prompt_tokens": self.prompt_tokens, "completion_tokens": self.completion_tokens,
                "total_tokens": self.prompt_tokens + self.completion_tokens}


class ConversationLoop:
    def __init__(self, pipeline, resolver, agents, limits: LoopLimits):
        """`pipeline`: pipeline.request_pipeline.RequestPipeline; `resolver`:
        agent_tools.toolset.ToolsetResolver; `agents`: agents.registry.AgentRegistry."""
        self.pipeline, self.resolver, self.agents, self.limits = pipeline, resolver, agents, limits

    async def _persona(self, turn: Turn, agent) -> Persona:
        return await resolve_persona(self.resolver, self.agents, turn.principal, agent, model=turn.model,
                                     instructions=turn.instructions, tools=turn.tools,
                                     completion_args=turn.completion_args, guardrails=turn.guardrails)

    async def prepare(self, turn: Turn) -> Prepared:
        """The response checked, before anything runs: its tools (ToolSpecError), guardrails,
        function results and confirmations (BadInput naming the field)."""
        if turn.handoff_execution not in ("server", "client"):
            raise BadInput(f"handoff_execution: {turn.handoff_execution!r}; server or client", "handoff_execution")
        persona = await self._persona(turn, turn.agent)
        pending = pending_calls(turn.history)
        confirmations = check_confirmations(turn.tool_confirmations, pending)
        check_results(turn.inputs, pending)
        if not turn.inputs and not confirmations:
            raise BadInput("inputs: nothing to answer; send a message, function results, or tool_confirmations",
                           "inputs")
        forced = any(e["type"] == "message.input" for e in turn.inputs)
        return Prepared(turn, persona, confirmations, forced)

    async def run(self, prepared: Prepared):
        """The response's items (conversations/items.py), in order."""
        turn = prepared.turn
        response = _Response(turn, prepared.persona, self.limits.budget())
        yield EventItem({"type": "conversation.response.started", "created_at": now_iso(),
                         "conversation_id": turn.conversation_id})
        for entry, choice in prepared.confirmations:
            async for item in self._confirmed(response, entry, choice):
                yield item
        asked = response.persona.completion_args.get("tool_choice") or "auto"
        first, waiting = True, False
        while True:
            response.budget.begin_step()
            choice = asked if (first and prepared.forced) or asked not in FORCED else "auto"
            first = False
            persona = response.persona
            request = persona.chat_request(chat_messages(response.working, persona.system_prompt()), choice,
                                           response.budget.step_max_tokens(persona.completion_args.get("max_tokens")))
            step = ModelStep(self.pipeline, turn.principal, request, new_entry_id("message.output"),
                             len(response.outputs), persona, response.references)
            # closed (and the engine's stream with it) when the response is
            async with aclosing(step.events(response.budget)) as events:
                async for event in events:
                    yield EventItem(event)
            response.prompt_tokens += step.usage.prompt_tokens
            response.completion_tokens += step.usage.completion_tokens
            response.budget.tokens += step.usage.completion_tokens
            response.guardrails += step.call.guardrails or []
            if choice in FORCED and not step.calls and step.finish == "length":
                raise ForcedCallCut(request.max_tokens)
            if step.text or not step.calls:
                yield response.add({**new_entry("message.output", agent_id=persona.agent_id, model=persona.model,
                                                role="assistant", content=step.content()),
                                    "id": step.message_id, "created_at": step.started_at})
            if not step.calls:
                break
            for call in step.calls:
                outcome: list[str] = []
                async for item in self._answer(response, call, outcome):
                    yield item
                waiting = waiting or "waiting" in outcome
                if "handoff" in outcome:  # the calls after it were the previous agent's: not run
                    break
            if waiting:
                break
        yield EventItem({"type": "conversation.response.done", "created_at": now_iso(), "usage": response.usage()})
        yield DoneItem(response.usage(), "waiting" if waiting else "idle", response.persona.agent_id,
                       response.guardrails or None, response.outputs)

    async def _execute(self, response: _Response, tool: PlatformTool, call_id: str, arguments: str):
        persona = response.persona
        entry_id, started_at = new_entry_id("tool.execution"), now_iso()
        index = len(response.outputs)
        yield EventItem(tool_run.started_event(persona, entry_id, tool.entry_name, arguments, index))
        outcome = await tool_run.run_tool(tool, arguments, response.context(call_id))
        info = tool_run.outcome_info(outcome, call_id, tool.name)
        response.references += outcome.references or []
        # The entry first: it is stored before a client that leaves on the done event has it.
        yield response.add(tool_run.execution_entry(persona, entry_id, tool.entry_name, arguments, info, started_at))
        yield EventItem(tool_run.done_event(entry_id, tool.entry_name, info, index))

    async def _confirmed(self, response: _Response, entry: dict, choice: str):
        """A pending call the client confirmed (run it) or denied (the model reads that it was not run)."""
        tool = response.persona.toolset.platform.get(entry["name"])
        arguments = tool_run.arguments_text(entry["arguments"])
        if choice == "allow" and tool is not None:
            async for item in self._execute(response, tool, entry["tool_call_id"], arguments):
                yield item
            return
        entry_name = tool.entry_name if tool is not None else entry["name"]
        denied = tool_run.denied_entry(response.persona, entry["name"], entry_name, entry["tool_call_id"], arguments)
        if tool is None:
            reason = f"{entry['name']} is no longer a tool of this conversation: it was not run"
            denied["info"].update(error=reason, confirmation="allowed" if choice == "allow" else "denied",
                                  content=f"Error: {reason}")
        yield response.add(denied)

    async def _answer(self, response: _Response, call: dict, outcome: list):
        """Answer one tool call of the model; `outcome` gets "waiting" (the client answers it) or
        "handoff" (the response goes on with another agent)."""
        persona = response.persona
        call_id, name, arguments = tool_run.call_parts(call)
        tool = persona.toolset.platform.get(name)
        index = len(response.outputs)
        if tool is not None and not tool.requires_confirmation:
            async for item in self._execute(response, tool, call_id, arguments):
                yield item
        elif tool is not None or any(f["function"]["name"] == name for f in persona.toolset.functions) \
                or (name in persona.toolset.handoffs and response.turn.handoff_execution == "client"):
            confirmation = "pending" if tool is not None else None
            event, entry = tool_run.function_call(persona, call_id, name, arguments, index, confirmation)
            yield response.add(entry)
            yield EventItem(event)
            outcome.append("waiting")
        elif name in persona.toolset.handoffs:
            async for item in self._handoff(response, persona.toolset.handoffs[name], index):
                yield item
            outcome.append("handoff")
        else:  # a function the model was not offered (an engine that does not constrain calls)
            async for item in self._execute(response, _unknown_tool(name, persona), call_id, arguments):
                yield item

    async def _handoff(self, response: _Response, agent, index: int):
        previous = response.persona
        handoff_id = new_entry_id("agent.handoff")
        yield EventItem({"type": "agent.handoff.started", "created_at": now_iso(), "output_index": index,
                         "id": handoff_id, "previous_agent_id": previous.agent_id,
                         "previous_agent_name": previous.agent_name})
        response.persona = await self._persona(response.turn, agent)
        yield response.add({**new_entry("agent.handoff", previous_agent_id=previous.agent_id,
                                        previous_agent_name=previous.agent_name, next_agent_id=agent.id,
                                        next_agent_name=agent.name), "id": handoff_id})
        yield EventItem({"type": "agent.handoff.done", "created_at": now_iso(), "output_index": index,
                         "id": handoff_id, "next_agent_id": agent.id, "next_agent_name": agent.name})


def _unknown_tool(name: str, persona: Persona) -> PlatformTool:
    offered = [d["function"]["name"] for d in persona.toolset.definitions()]

    async def refuse(_args: dict, _context: ToolContext):
        reason = f"no tool named {name!r} is offered; the tools are: {', '.join(offered) or 'none'}"
        return ToolOutcome(content=f"Error: {reason}", info={"error": reason}, error=reason)
    return PlatformTool(name or "unknown", "", {"type": "object"}, name or "unknown", refuse)
