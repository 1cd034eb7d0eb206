"""What ConversationLoop.run yields, in order, for the service and the routes.

    async for item in loop.run(prepared):
        EventItem  -> stream it: `event: {item.type}\\ndata: {json(item.event)}\\n\\n`
        EntryItem  -> an output entry, complete: persist it (in the order yielded), answer it in `outputs`
        DoneItem   -> the response's end: usage, and the conversation's status after it

The first item is the conversation.response.started event; the last two are the
conversation.response.done event and the DoneItem. A failure midway (a bound reached, a guard's
refusal, an engine error) is raised from the iteration after the entries made so far were yielded:
the service ends the response failed, and the route sends a conversation.response.error event
({message, code}) if the stream had started.
"""

from dataclasses import dataclass, field


@dataclass
class EventItem:
    # The SSE event's data, in the spec's *Event shape, with its "type" (the SSE event name).
    event: dict

    @property
    def type(self) -> str:
        return self.event["type"]


@dataclass
class EntryItem:
    # A complete output entry (MessageOutputEntry, ToolExecutionEntry, FunctionCallEntry,
    # AgentHandoffEntry) in the spec's shape, with its id.
    entry: dict


@dataclass
class DoneItem:
    # ConversationUsageInfo: prompt_tokens, completion_tokens, total_tokens summed over the model steps.
    usage: dict
    # "idle": the response is complete; "waiting": it stopped on function calls the client must
    # answer (function.result entries) or confirm (tool_confirmations).
    status: str
    # The agent answering at the end (differs from the turn's after a server-side handoff): the
    # conversation's active_agent_id. None for a bare model.
    agent_id: str | None = None
    # What the guardrails checked on each model step (ConversationResponse.guardrails), or None.
    guardrails: list[dict] | None = None
    # The output entries of the response, in order (the same as the EntryItems yielded).
    outputs: list[dict] = field(default_factory=list)
