"""The conversation loop (conversations/loop.py) driven directly, over a REAL RequestPipeline.

The pipeline is the real one (billing and limits on a real SQLite database, trace capture, the
guard hook); only its "chat" capability is a scripted stand-in (a mock: no model decides here):
each model step answers the next scripted reply (some text, or tool calls), so that the loop's
logic (steps, tools, confirmations, function round trips, handoffs, bounds, forced tool choice
on the first step only, usage summed, events in order) is tested without depending on what a
135M model happens to say. The platform tools are fakes with a recorded `run`, and the agents
registry a dict (the loop only reads agents). Every event and entry is validated against
Mistral's spec. The live conversation tests (tests/test_conversations_api.py) run the loop on
the real model through the SDK.
"""

import asyncio
import json
import time
from contextlib import aclosing

import pytest
from spec_schema import validate
from sqlalchemy import select

from plateforme.agent_tools.base import PlatformTool, ToolOutcome, ToolSpecError
from plateforme.agent_tools.configuration import configured
from plateforme.agent_tools.toolset import ToolsetResolver, handoff_name
from plateforme.agents.errors import BadInput, NotFound
from plateforme.agents.registry import AgentRecord
from plateforme.chat.types import Delta, Usage
from plateforme.conversations.entries import input_entries, messages_view
from plateforme.conversations.items import DoneItem, EntryItem, EventItem
from plateforme.conversations.limits import ForcedCallCut, LoopBoundReached, LoopLimits
from plateforme.conversations.loop import ConversationLoop, Turn
from plateforme.pipeline.guards import GUARDRAILS, RequestRefused
from plateforme.pipeline.request_pipeline import RequestPipeline
from plateforme.storage.database import open_database
from plateforme.storage.tables import UsageRecord
from plateforme.storage.trace_tables import ChatTrace
from plateforme.tenancy.accounts import Accounts
from plateforme.tenancy.ids import utcnow
from plateforme.tenancy.principal import Principal
from plateforme.traces.service import TraceService
from plateforme.usage.billing import Billing
from plateforme.usage.limits import RateLimited

MODEL = "scripted-model"
EVENT_SCHEMAS = {
    "conversation.response.started": "ResponseStartedEvent", "conversation.response.done": "ResponseDoneEvent",
    "conversation.response.error": "ResponseErrorEvent", "message.output.delta": "MessageOutputEvent",
    "tool.execution.started": "ToolExecutionStartedEvent", "tool.execution.done": "ToolExecutionDoneEvent",
    "function.call.delta": "FunctionCallEvent", "agent.handoff.started": "AgentHandoffStartedEvent",
    "agent.handoff.done": "AgentHandoffDoneEvent"}
ENTRY_SCHEMAS = {
    "message.input": "MessageInputEntry", "message.output": "MessageOutputEntry",
    "function.call": "FunctionCallEntry", "function.result": "FunctionResultEntry",
    "tool.execution": "ToolExecutionEntry", "agent.handoff": "AgentHandoffEntry"}


# -- the scripted chat capability (a stand-in for the model) and fake tools


def say(text: str, completion_tokens: int = 5):
    return ("say", text, completion_tokens)


def call(*calls, completion_tokens: int = 5):
    """Tool calls: (name, arguments) pairs."""
    return ("call", list(calls), completion_tokens)


def cut(text: str):
    """A step stopped at its max_tokens (finish_reason length) partway through what it wrote."""
    return ("cut", text, 5)


def wait(seconds: float):
    return ("wait", seconds, 0)


class ScriptedChat:
    """The "chat" service of the pipeline: each stream() is one model step answering the next reply."""

    def __init__(self):
        self.replies: list = []
        self.requests: list = []

    def script(self, *replies) -> None:
        self.replies, self.requests = list(replies), []

    async def complete(self, request, tally=None):
        raise AssertionError("the loop streams every step")

    def stream(self, request, tally=None):
        self.requests.append(request)
        assert self.replies, "the loop asked for more model steps than the script has"
        return self._answer(self.replies.pop(0), tally)

    async def _answer(self, reply, tally):
        kind, value, tokens = reply
        tally.prompt[0], tally.completion[0] = 20, 0  # counted as generated, as the engine clients do
        yield Delta(0, role="assistant")
        if kind == "wait":
            await asyncio.sleep(value)
        elif kind in ("say", "cut"):
            for i in range(0, len(value), 4):
                tally.completion[0] += 1
                yield Delta(0, content=value[i:i + 4])
        else:
            yield Delta(0, tool_calls=[{"id": f"call{n}{name[:3]}", "type": "function", "index": n,
                                        "function": {"name": name, "arguments": json.dumps(args)}}
                                       for n, (name, args) in enumerate(value)])
        yield Delta(0, finish_reason={"call": "tool_calls", "cut": "length"}.get(kind, "stop"))
        yield Usage(20, tokens)


class FakeTools:
    """A provider of platform tools; every run is recorded."""

    def __init__(self, entry_name: str, names: list[str], references: bool = False):
        self.entry_name, self.names, self.references = entry_name, names, references
        self.runs: list[tuple[str, dict]] = []

    def _tool(self, name: str) -> PlatformTool:
        async def run(args, context):
            self.runs.append((name, args))
            refs = [{"type": "tool_reference", "tool": self.entry_name, "title": f"doc {args.get('q')}",
                     "url": "https://example.test/doc", "description": "an excerpt"}] if self.references else []
            return ToolOutcome(content=f"[1] result of {name} for {args}", info={"query": args}, references=refs)
        return PlatformTool(name, f"the {name} tool", {"type": "object", "properties": {"q": {"type": "string"}}},
                            f"{self.entry_name}.{name}" if self.entry_name != "document_library" else self.entry_name,
                            run)

    async def tools(self, principal, spec, param):
        if spec.get("library_ids") == ["unknown"]:
            raise ToolSpecError(f"{param}.library_ids: no library 'unknown'", f"{param}.library_ids")
        return configured([self._tool(n) for n in self.names], spec.get("tool_configuration"))


class Agents:
    """The agents registry as the loop reads it (get by id)."""

    def __init__(self):
        self.records: dict[str, AgentRecord] = {}

    def add(self, agent_id: str, **body) -> AgentRecord:
        record = AgentRecord(agent_id, "ws", 1, [1], 1, utcnow(), utcnow(),
                             {"model": MODEL, "name": agent_id, **body})
        self.records[agent_id] = record
        return record

    def get(self, workspace_id, agent_id, version=None):
        if agent_id not in self.records:
            raise NotFound(f"no agent {agent_id}")
        return self.records[agent_id]


class RefusingGuard:
    """The guardrails guard slot of the pipeline, filled by a stand-in that refuses a word."""
    name = GUARDRAILS

    async def check(self, call):
        if call.request.guardrails and any("forbidden" in (m.get("content") or "") for m in call.request.messages):
            raise RequestRefused("guardrails", "the input says forbidden")


class Bench:
    def __init__(self, tmp):
        self.db = open_database(f"sqlite:///{tmp / 'loop.db'}")
        accounts = Accounts(self.db)
        self.principal = self._principal(accounts.create_workspace("loop", capture_traces=True))
        self.limited = self._principal(accounts.create_workspace("limited", requests_per_minute=2))
        self.chat = ScriptedChat()
        self.traces = TraceService(self.db, None)
        self.pipeline = RequestPipeline(Billing(self.db), self.traces, None, {"chat": self.chat}, [RefusingGuard()])
        self.library = FakeTools("document_library", ["search"], references=True)
        self.connector = FakeTools("crm", ["lookup", "delete"])
        self.resolver = ToolsetResolver({"document_library": self.library, "connector": self.connector})
        self.agents = Agents()

    @staticmethod
    def _principal(workspace) -> Principal:
        return Principal(workspace_id=workspace.id, key_id=None, user_id=None, role="admin")

    def loop(self, **limits) -> ConversationLoop:
        return ConversationLoop(self.pipeline, self.resolver, self.agents, LoopLimits(**limits))

    def turn(self, inputs="hello", **fields) -> Turn:
        fields.setdefault("model", MODEL if "agent" not in fields else None)
        return Turn(fields.pop("principal", self.principal), "conv_test", inputs=input_entries(inputs)
                    if inputs is not None else [], **fields)

    def respond(self, turn: Turn, *replies, limits: dict | None = None):
        """(items, error): every item the loop yielded, and what it raised (or None)."""
        self.chat.script(*replies)

        async def scenario():
            loop = self.loop(**(limits or {}))
            items, error = [], None
            try:
                async for item in loop.run(await loop.prepare(turn)):
                    items.append(item)
            except Exception as exc:
                error = exc
            await self.traces.recorder.flush()
            return items, error
        return asyncio.run(scenario())

    def rows(self, table, workspace_id: str) -> list:
        with self.db.session() as s:
            return list(s.scalars(select(table).where(table.workspace_id == workspace_id)))


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    b = Bench(tmp_path_factory.mktemp("loop"))
    yield b
    b.db.dispose()


def answered(bench, turn, *replies, limits=None):
    items, error = bench.respond(turn, *replies, limits=limits)
    if error is not None:
        raise error
    return checked(items)


def checked(items):
    """(event types, events, entries, done) of a response, each event and entry valid per the spec."""
    events = [i.event for i in items if isinstance(i, EventItem)]
    entries = [i.entry for i in items if isinstance(i, EntryItem)]
    done = [i for i in items if isinstance(i, DoneItem)]
    for event in events:
        validate(event, EVENT_SCHEMAS[event["type"]])
        validate({"event": event["type"], "data": event}, "ConversationEvents")
    for entry in entries:
        validate(entry, ENTRY_SCHEMAS[entry["type"]])
    if done:
        assert done[0].outputs == entries and isinstance(items[-1], DoneItem)
        validate({"object": "conversation.response", "conversation_id": "conv_test", "outputs": entries,
                  "usage": done[0].usage, "guardrails": done[0].guardrails}, "ConversationResponse")
    return [e["type"] for e in events], events, entries, done[0] if done else None


def collapsed(types: list[str]) -> list[str]:
    """Event types with runs of message.output.delta written once."""
    out = []
    for t in types:
        if not (out and out[-1] == t == "message.output.delta"):
            out.append(t)
    return out


def history_after(turn: Turn, entries: list[dict]) -> list[dict]:
    history = turn.history + turn.inputs + entries
    validate({"object": "conversation.history", "conversation_id": "c", "entries": history}, "ConversationHistory")
    return history


# -- answers, tools, usage, the pipeline on every step


def test_a_plain_answer_streams_deltas_then_one_message_entry(bench):
    types, events, entries, done = answered(bench, bench.turn("hello", instructions="Be brief."),
                                            say("Hello there, friend."))
    assert collapsed(types) == ["conversation.response.started", "message.output.delta",
                                "conversation.response.done"]
    assert events[0]["conversation_id"] == "conv_test"
    assert "".join(e["content"] for e in events if e["type"] == "message.output.delta") == "Hello there, friend."
    assert [e["type"] for e in entries] == ["message.output"] and entries[0]["content"] == "Hello there, friend."
    assert {e["id"] for e in events if e["type"] == "message.output.delta"} == {entries[0]["id"]}
    assert entries[0]["id"].startswith("msg_") and entries[0]["model"] == MODEL
    assert done.status == "idle" and done.usage == {"prompt_tokens": 20, "completion_tokens": 5, "total_tokens": 25}
    assert events[-1]["usage"] == done.usage
    request = bench.chat.requests[0]
    assert request.messages == [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hello"}]
    assert request.tools is None


def test_a_platform_tool_runs_and_the_answer_cites_its_references(bench):
    tools = [{"type": "document_library", "library_ids": ["lib_1"]}]
    turn = bench.turn("what is the leave policy?", tools=tools, completion_args={"tool_choice": "any"})
    types, events, entries, done = answered(bench, turn, call(("search", {"q": "leave"})),
                                            say("Leave is 25 days [1]."))
    assert collapsed(types) == ["conversation.response.started", "tool.execution.started", "tool.execution.done",
                                "message.output.delta", "conversation.response.done"]
    assert bench.library.runs[-1] == ("search", {"q": "leave"})
    execution, answer = entries
    assert execution["type"] == "tool.execution" and execution["name"] == "document_library"
    assert execution["id"].startswith("tool_exec_") and json.loads(execution["arguments"]) == {"q": "leave"}
    assert execution["info"]["query"] == {"q": "leave"} and execution["info"]["tool_call_id"] == "call0sea"
    assert execution["info"]["content"].startswith("[1] result of search")
    assert events[1]["id"] == events[2]["id"] == execution["id"] and events[2]["info"] == execution["info"]
    # the answer's [1] became the retrieved reference
    assert [c["type"] for c in answer["content"]] == ["text", "tool_reference", "text"]
    assert answer["content"][1]["title"] == "doc leave"
    deltas = [(e["content_index"], e["content"]) for e in events if e["type"] == "message.output.delta"]
    assert [c for i, c in deltas if i == 1] == [answer["content"][1]]  # streamed as a chunk of its own
    assert "".join(c for i, c in deltas if i != 1) == "Leave is 25 days."
    # forced on the first step only; the second step read the tool's result; the citing rule was given
    first, second = bench.chat.requests
    assert (first.tool_choice, second.tool_choice) == ("any", "auto")
    assert first.tools[0]["function"]["name"] == "search" and "cite" in first.messages[0]["content"]
    assert second.messages[-2]["tool_calls"][0]["id"] == "call0sea"
    assert second.messages[-1] == {"role": "tool", "tool_call_id": "call0sea", "name": "search",
                                   "content": execution["info"]["content"]}
    assert done.usage == {"prompt_tokens": 40, "completion_tokens": 10, "total_tokens": 50}
    # a later turn replays the tool execution as the model read it
    later = bench.turn("and sick leave?", tools=tools, history=history_after(turn, entries))
    answered(bench, later, say("Ask HR."))
    replay = bench.chat.requests[0].messages
    assert [m["role"] for m in replay[1:]] == ["user", "assistant", "tool", "assistant", "user"]
    assert replay[3]["content"] == execution["info"]["content"]
    assert replay[4]["content"] == "Leave is 25 days."  # the answer's references are left out


def test_every_step_goes_through_the_pipeline_billed_and_traced(bench):
    before_usage = len(bench.rows(UsageRecord, bench.principal.workspace_id))
    before_traces = len(bench.rows(ChatTrace, bench.principal.workspace_id))
    turn = bench.turn("look it up", tools=[{"type": "connector", "connector_id": "crm"}])
    answered(bench, turn, call(("lookup", {"q": "a"})), call(("lookup", {"q": "b"})), say("done"))
    usage = bench.rows(UsageRecord, bench.principal.workspace_id)[before_usage:]
    assert len(usage) == 3 and {u.route for u in usage} == {"chat"} and all(u.completion_tokens == 5 for u in usage)
    traces = bench.rows(ChatTrace, bench.principal.workspace_id)[before_traces:]
    assert len(traces) == 3 and traces[-1].request["messages"][-1]["role"] == "tool"
    assert traces[0].request["tools"][0]["function"]["name"] == "lookup"


def test_a_response_closed_midway_closes_its_step_and_bills_what_was_generated(bench):
    before = len(bench.rows(UsageRecord, bench.principal.workspace_id))
    bench.chat.script(say("a long answer " * 10))

    async def scenario():
        loop = bench.loop()
        seen = 0
        async with aclosing(loop.run(await loop.prepare(bench.turn("talk")))) as items:
            async for item in items:
                if isinstance(item, EventItem) and item.type == "message.output.delta":
                    seen += 1
                    if seen == 3:
                        break  # the client left
        await asyncio.sleep(0.2)  # the cut request's usage is written in the background
        return seen
    assert asyncio.run(scenario()) == 3
    (row,) = bench.rows(UsageRecord, bench.principal.workspace_id)[before:]
    assert (row.prompt_tokens, row.completion_tokens) == (20, 3)


def test_the_workspace_limits_apply_to_each_step(bench):
    turn = bench.turn("go", principal=bench.limited, tools=[{"type": "connector", "connector_id": "crm"}])
    items, error = bench.respond(turn, call(("lookup", {"q": "a"})), call(("lookup", {"q": "b"})), say("x"))
    assert isinstance(error, RateLimited)  # 2 requests a minute: the third step is refused
    assert [i.entry["type"] for i in items if isinstance(i, EntryItem)] == ["tool.execution", "tool.execution"]


def test_guardrails_are_checked_on_every_step(bench):
    guard = [{"moderation_llm_v2": {"action": "block"}}]
    turn = bench.turn("a forbidden word", guardrails=guard)
    items, error = bench.respond(turn, say("never said"))
    assert isinstance(error, RequestRefused) and not bench.chat.requests  # refused before generation
    answered(bench, bench.turn("fine", guardrails=guard), say("ok"))
    assert bench.chat.requests[0].guardrails[0].action == "block"


# -- client functions, confirmations


WEATHER = {"type": "function", "function": {"name": "get_weather", "description": "the weather",
                                            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}


def test_a_client_function_round_trip(bench):
    turn = bench.turn("weather in Paris?", tools=[WEATHER], completion_args={"tool_choice": "required"})
    types, events, entries, done = answered(bench, turn, call(("get_weather", {"city": "Paris"})))
    assert types == ["conversation.response.started", "function.call.delta", "conversation.response.done"]
    (fc,) = entries
    assert fc["type"] == "function.call" and fc["name"] == "get_weather" and fc["id"].startswith("fc_")
    assert fc["tool_call_id"] == "call0get" and fc["confirmation_status"] is None
    assert events[1]["tool_call_id"] == fc["tool_call_id"] and events[1]["id"] == fc["id"]
    assert done.status == "waiting"
    history = history_after(turn, entries)
    # the client's result resumes it; the forced choice is not applied again
    result = {"type": "function.result", "tool_call_id": "call0get", "result": '{"temp": 21}'}
    resumed = bench.turn([result], tools=[WEATHER], history=history, completion_args={"tool_choice": "required"})
    assert resumed.inputs[0]["id"].startswith("fr_")
    types, _, entries, done = answered(bench, resumed, say("21 degrees."))
    assert done.status == "idle" and entries[0]["content"] == "21 degrees."
    request = bench.chat.requests[0]
    assert request.tool_choice == "auto"
    assert request.messages[-2]["tool_calls"][0]["function"] == {"name": "get_weather", "arguments": '{"city": "Paris"}'}
    assert request.messages[-1] == {"role": "tool", "tool_call_id": "call0get", "name": "get_weather",
                                    "content": '{"temp": 21}'}


def prepare(bench, turn):
    return asyncio.run(bench.loop().prepare(turn))


def test_a_result_must_answer_a_pending_call(bench):
    turn = bench.turn("weather?", tools=[WEATHER])
    _, _, entries, _ = answered(bench, turn, call(("get_weather", {"city": "Oslo"})))
    history = history_after(turn, entries)
    wrong = {"type": "function.result", "tool_call_id": "nope", "result": "x"}
    with pytest.raises(BadInput) as caught:
        prepare(bench, bench.turn([wrong], tools=[WEATHER], history=history))
    assert caught.value.param == "inputs.0.tool_call_id" and "call0get" in str(caught.value)
    with pytest.raises(BadInput) as caught:  # a new message while a call waits for its result
        prepare(bench, bench.turn("hello again", tools=[WEATHER], history=history))
    assert caught.value.param == "inputs" and "function.result" in str(caught.value)
    with pytest.raises(BadInput) as caught:  # a result in a conversation that waits for nothing
        prepare(bench, bench.turn([wrong], tools=[WEATHER]))
    assert caught.value.param == "inputs.0.tool_call_id" and "waits for none" in str(caught.value)


def confirming_turn(bench):
    tools = [{"type": "connector", "connector_id": "crm", "tool_configuration": {"requires_confirmation": ["delete"]}}]
    turn = bench.turn("delete customer 7", tools=tools)
    types, events, entries, done = answered(bench, turn, call(("delete", {"q": "7"})))
    return tools, turn, types, events, entries, done


def test_a_tool_that_requires_confirmation_waits_then_runs_when_allowed(bench):
    runs = len(bench.connector.runs)
    tools, turn, types, events, entries, done = confirming_turn(bench)
    assert types == ["conversation.response.started", "function.call.delta", "conversation.response.done"]
    (fc,) = entries
    assert fc["confirmation_status"] == "pending" and events[1]["confirmation_status"] == "pending"
    assert done.status == "waiting" and len(bench.connector.runs) == runs  # not run yet
    history = history_after(turn, entries)
    allow = [{"tool_call_id": fc["tool_call_id"], "confirmation": "allow"}]
    resumed = bench.turn(None, tools=tools, history=history, tool_confirmations=allow)
    types, events, entries, done = answered(bench, resumed, say("Deleted."))
    assert collapsed(types) == ["conversation.response.started", "tool.execution.started", "tool.execution.done",
                                "message.output.delta", "conversation.response.done"]
    assert bench.connector.runs[-1] == ("delete", {"q": "7"}) and len(bench.connector.runs) == runs + 1
    execution, answer = entries
    assert execution["name"] == "crm.delete" and execution["info"]["tool_call_id"] == fc["tool_call_id"]
    assert done.status == "idle" and bench.chat.requests[0].messages[-1]["role"] == "tool"
    # answered: nothing waits any more
    with pytest.raises(BadInput) as caught:
        prepare(bench, bench.turn(None, tools=tools, history=history_after(resumed, entries), tool_confirmations=allow))
    assert caught.value.param == "tool_confirmations.0.tool_call_id"


def test_a_denied_call_is_not_run_and_the_model_reads_why(bench):
    runs = len(bench.connector.runs)
    tools, turn, _, _, entries, _ = confirming_turn(bench)
    history = history_after(turn, entries)
    deny = [{"tool_call_id": entries[0]["tool_call_id"], "confirmation": "deny"}]
    types, _, entries, done = answered(bench, bench.turn(None, tools=tools, history=history, tool_confirmations=deny),
                                       say("I did not delete it."))
    assert len(bench.connector.runs) == runs
    denied, answer = entries
    assert denied["type"] == "tool.execution" and denied["info"]["confirmation"] == "denied"
    assert "denied" in bench.chat.requests[0].messages[-1]["content"] and done.status == "idle"


def test_confirmations_must_answer_the_pending_calls(bench):
    tools, turn, _, _, entries, _ = confirming_turn(bench)
    history = history_after(turn, entries)
    call_id = entries[0]["tool_call_id"]
    cases = [
        (bench.turn(None, tools=tools, history=history), "tool_confirmations"),  # nothing sent at all
        (bench.turn("go on", tools=tools, history=history), "tool_confirmations"),  # the confirmation missing
        (bench.turn(None, tools=tools, history=history,
                    tool_confirmations=[{"tool_call_id": "other", "confirmation": "allow"}]),
         "tool_confirmations.0.tool_call_id"),
        (bench.turn(None, tools=tools, history=history,
                    tool_confirmations=[{"tool_call_id": call_id, "confirmation": "maybe"}]),
         "tool_confirmations.0.confirmation"),
        (bench.turn([{"type": "function.result", "tool_call_id": call_id, "result": "x"}], tools=tools,
                    history=history, tool_confirmations=[{"tool_call_id": call_id, "confirmation": "allow"}]),
         "inputs.0.tool_call_id"),  # a confirmed call is not answered with a result
    ]
    for turn, param in cases:
        with pytest.raises(BadInput) as caught:
            prepare(bench, turn)
        assert caught.value.param == param, (param, str(caught.value))


# -- handoffs


def test_a_server_handoff_continues_with_the_next_agent(bench):
    bench.agents.add("ag_billing", name="Billing desk", model="billing-model", instructions="You do billing.",
                     description="answers invoices")
    front = bench.agents.add("ag_front", name="Front desk", instructions="You route.", handoffs=["ag_billing"])
    turn = bench.turn("my invoice is wrong", agent=front, completion_args={"tool_choice": "any"})
    types, events, entries, done = answered(bench, turn, call((handoff_name("Billing desk"), {})),
                                            say("Billing here."))
    assert collapsed(types) == ["conversation.response.started", "agent.handoff.started", "agent.handoff.done",
                                "message.output.delta", "conversation.response.done"]
    handoff, answer = entries
    assert handoff["type"] == "agent.handoff" and handoff["id"].startswith("handoff_")
    assert (handoff["previous_agent_id"], handoff["previous_agent_name"]) == ("ag_front", "Front desk")
    assert (handoff["next_agent_id"], handoff["next_agent_name"]) == ("ag_billing", "Billing desk")
    assert events[1]["id"] == events[2]["id"] == handoff["id"]
    assert answer["agent_id"] == "ag_billing" and answer["model"] == "billing-model"
    assert done.agent_id == "ag_billing"
    first, second = bench.chat.requests
    assert first.model == MODEL and first.tools[0]["function"]["name"] == "handoff_to_billing_desk"
    assert "invoices" in first.tools[0]["function"]["description"]
    assert second.model == "billing-model" and second.messages[0] == {"role": "system", "content": "You do billing."}
    assert second.tools is None and second.tool_choice == "auto"
    history_after(turn, entries)


def test_a_client_handoff_is_a_function_call_for_the_client(bench):
    bench.agents.add("ag_billing", name="Billing desk")
    front = bench.agents.add("ag_front", name="Front desk", handoffs=["ag_billing"])
    turn = bench.turn("invoice", agent=front, handoff_execution="client")
    types, _, entries, done = answered(bench, turn, call(("handoff_to_billing_desk", {})))
    assert types == ["conversation.response.started", "function.call.delta", "conversation.response.done"]
    assert entries[0]["name"] == "handoff_to_billing_desk" and done.status == "waiting"
    assert done.agent_id == "ag_front"


def test_an_agent_handing_off_to_a_deleted_agent_is_a_400(bench):
    lost = bench.agents.add("ag_lost", name="Lost", handoffs=["ag_gone"])
    with pytest.raises(BadInput) as caught:
        prepare(bench, bench.turn("hi", agent=lost))
    assert caught.value.param == "handoffs" and "ag_gone" in str(caught.value)


# -- bounds


def test_the_step_bound_ends_the_response_with_an_error_naming_its_setting(bench):
    turn = bench.turn("loop", tools=[{"type": "connector", "connector_id": "crm"}])
    items, error = bench.respond(turn, *[call(("lookup", {"q": str(n)})) for n in range(3)], limits={"max_steps": 2})
    assert isinstance(error, LoopBoundReached) and error.bound == "steps"
    assert "2 model steps" in str(error) and "PLATEFORME_AGENT_MAX_STEPS" in str(error)
    types, _, entries, done = checked(items)
    assert [e["type"] for e in entries] == ["tool.execution", "tool.execution"] and done is None
    assert len(bench.chat.requests) == 2


def test_the_token_bound_counts_the_tokens_of_every_step(bench):
    turn = bench.turn("loop", tools=[{"type": "connector", "connector_id": "crm"}],
                      completion_args={"max_tokens": 100})
    replies = [call(("lookup", {"q": str(n)}), completion_tokens=10) for n in range(3)]
    items, error = bench.respond(turn, *replies, limits={"max_tokens": 15})
    assert isinstance(error, LoopBoundReached) and error.bound == "tokens"
    assert "15 generated tokens" in str(error) and "PLATEFORME_AGENT_MAX_TOKENS" in str(error)
    # each step asked for at most what was left of the budget
    assert [r.max_tokens for r in bench.chat.requests] == [15, 5]


def test_a_forced_call_cut_at_max_tokens_is_an_error_not_an_answer(bench):
    """The cut JSON of a forced call (a too small max_tokens) is neither run nor stored as the answer."""
    turn = bench.turn("loop", tools=[{"type": "connector", "connector_id": "crm"}],
                      completion_args={"tool_choice": "any", "max_tokens": 12})
    items, error = bench.respond(turn, cut('{"tool_calls": [{"name": "look'))
    assert isinstance(error, ForcedCallCut) and error.param == "completion_args.max_tokens"
    assert "max_tokens (12)" in str(error)
    assert [i for i in items if isinstance(i, EntryItem)] == []
    # Unforced, a step cut at its max_tokens is an answer like any other (finish_reason length).
    turn = bench.turn("loop", tools=[{"type": "connector", "connector_id": "crm"}], completion_args={"max_tokens": 12})
    _, _, entries, done = answered(bench, turn, cut("A long answer th"))
    assert [e["content"] for e in entries] == ["A long answer th"] and done.status == "idle"


def test_the_time_bound_stops_a_slow_step(bench):
    turn = bench.turn("slow")
    began = time.monotonic()
    items, error = bench.respond(turn, wait(5), limits={"max_seconds": 0.3})
    assert isinstance(error, LoopBoundReached) and error.bound == "seconds"
    assert "PLATEFORME_AGENT_MAX_SECONDS" in str(error)
    assert time.monotonic() - began < 3


def test_a_tool_that_hangs_is_cut_at_the_time_bound(bench):
    async def hang(args, context):
        await asyncio.sleep(30)

    class Hanging:
        async def tools(self, principal, spec, param):
            return [PlatformTool("slow_tool", "", {"type": "object"}, "slow", hang)]
    loop_resolver, bench.resolver = bench.resolver, ToolsetResolver({"connector": Hanging()})
    try:
        items, error = bench.respond(bench.turn("x", tools=[{"type": "connector", "connector_id": "s"}]),
                                     call(("slow_tool", {})), say("never"), limits={"max_seconds": 0.5})
    finally:
        bench.resolver = loop_resolver
    types, events, entries, _ = checked(items)
    assert entries[0]["type"] == "tool.execution" and "PLATEFORME_AGENT_MAX_SECONDS" in entries[0]["info"]["error"]
    assert isinstance(error, LoopBoundReached) and error.bound == "seconds"


def test_a_tool_the_model_was_not_offered_is_answered_with_an_error(bench):
    turn = bench.turn("x", tools=[WEATHER])
    types, _, entries, done = answered(bench, turn, call(("launch_rockets", {})), say("Sorry."))
    assert entries[0]["type"] == "tool.execution" and "launch_rockets" in entries[0]["info"]["error"]
    assert "get_weather" in entries[0]["info"]["error"] and done.status == "idle"


# -- the toolset, the entries


def resolve(bench, tools, handoffs=()):
    return asyncio.run(bench.resolver.resolve(bench.principal, tools, list(handoffs)))


def test_the_toolset_resolves_each_kind_and_refuses_what_it_cannot_run(bench):
    billing = bench.agents.add("ag_billing", name="Billing desk!")
    toolset = resolve(bench, [WEATHER, {"type": "document_library", "library_ids": ["l"]},
                              {"type": "connector", "connector_id": "crm", "tool_configuration": {"exclude": ["delete"]}}],
                      [billing])
    assert list(toolset.platform) == ["search", "lookup"] and toolset.functions == [WEATHER]
    assert list(toolset.handoffs) == ["handoff_to_billing_desk"]
    assert [d["function"]["name"] for d in toolset.definitions()] == ["search", "lookup", "get_weather",
                                                                      "handoff_to_billing_desk"]
    for tools, param in [([{"type": "web_search"}], "tools.0.type"),
                         ([WEATHER, {"type": "code_interpreter"}], "tools.1.type"),
                         ([{"type": "document_library", "library_ids": ["unknown"]}], "tools.0.library_ids"),
                         ([WEATHER, WEATHER], "tools.1.function.name"),
                         ([{"type": "function", "function": {"name": "search"}},
                           {"type": "document_library", "library_ids": ["l"]}], "tools.1"),
                         ([{"type": "function", "function": {"name": "bad name"}}], "tools.0.function.name"),
                         ([{"type": "teleport"}], "tools.0.type")]:
        with pytest.raises(ToolSpecError) as caught:
            resolve(bench, tools)
        assert caught.value.param == param and caught.value.status == 400, (tools, str(caught.value))
    assert handoff_name("Équipe facturation") == "handoff_to_equipe_facturation"
    # two agents whose names read the same get distinct handoff functions
    twin = bench.agents.add("ag_twin", name="billing desk")
    assert len(resolve(bench, [], [billing, twin]).handoffs) == 2


def test_a_built_in_tool_is_refused_before_the_response_runs(bench):
    with pytest.raises(ToolSpecError) as caught:
        prepare(bench, bench.turn("search the web", tools=[{"type": "web_search"}]))
    assert caught.value.param == "tools.0.type" and "does not run" in str(caught.value)


def test_input_entries_get_ids_and_timestamps_and_bad_ones_are_named():
    (entry,) = input_entries("hi")
    assert entry["type"] == "message.input" and entry["role"] == "user" and entry["id"].startswith("msg_")
    validate(entry, "MessageInputEntry")
    listed = input_entries([{"role": "user", "content": [{"type": "text", "text": "hi"}]},
                            {"type": "message.output", "content": "earlier answer"},
                            {"type": "function.result", "tool_call_id": "abc", "result": "1"}])
    assert [e["type"] for e in listed] == ["message.input", "message.output", "function.result"]
    for e in listed:
        validate(e, ENTRY_SCHEMAS[e["type"]])
    assert messages_view(listed) == listed[:2]
    for inputs, param in [("", "inputs"), ([], "inputs"), ([{"type": "message.input"}], "inputs.0.content"),
                          ([{"role": "system", "content": "x"}], "inputs.0.role"),
                          ([{"type": "function.result", "tool_call_id": "a", "result": 3}], "inputs.0.result"),
                          (["hi", {"type": "nope"}], "inputs.0"),
                          ([{"role": "user", "content": "x", "colour": "red"}], "inputs.0.colour"),
                          ([{"role": "user", "content": "x"}, {"type": "tool.exec"}], "inputs.1.type")]:
        with pytest.raises(BadInput) as caught:
            input_entries(inputs)
        assert caught.value.param == param, (inputs, caught.value.param)
