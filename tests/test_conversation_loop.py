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
from plateforme.conversations.limits import LoopBoundReached, LoopLimits
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
        return self._answer(self.replies.pop(0))

    async def _answer(self, reply):
        kind, value, tokens = reply
        yield Delta(0, role="assistant")
        if kind == "wait":
            await asyncio.sleep(value)
        elif kind == "say":
            for i in range(0, len(value), 4):
                yield Delta(0, content=value[i:i + 4])
        else:
            yield Delta(0, tool_calls=[{"id": f"call{n}{name[:3]}", "type": "function", "index": n,
                                        "function": {"name": name, "arguments": json.dumps(args)}}
                                       for n, (name, args) in enumerate(value)])
        yield Delta(0, finish_reason="tool_calls" if kind == "call" else "stop")
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
    assert replay[3]["content"] == execution["info"]["content"] and replay[4]["content"] == "Leave is 25 days."  # its references are left out


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
