"""ConversationService and the routes' stream, in process: the real store (SQLite), the real loop
and RequestPipeline; only the pipeline's "chat" capability is a scripted stand-in (a mock: no
model decides here) and the agents registry a dict (the service and loop only read agents), so that the failures a live 135M model cannot be made to produce on demand
are tested: a failure after the stream started (an error event, what was made kept, the
conversation failed), a client leaving mid-stream, a second response while one runs (409), a
refused append leaving the conversation as it was, the end of a response recorded, and the
agent a server-side handoff moved the conversation to answering the next append."""

import asyncio
import json

import pytest
from spec_schema import validate

import plateforme.conversations.service as service_module
import plateforme.conversations.store as store_module
from plateforme.agent_tools.base import PlatformTool, ToolOutcome
from plateforme.agent_tools.toolset import ToolsetResolver, handoff_name
from plateforme.agents.errors import BadInput, Conflict, NotFound
from plateforme.agents.registry import AgentRecord
from plateforme.api.routes.conversations import _sse
from plateforme.chat.types import Delta, Usage
from plateforme.conversations.limits import LoopLimits
from plateforme.conversations.loop import ConversationLoop
from plateforme.conversations.service import ConversationService, Options
from plateforme.conversations.store import ConversationStore
from plateforme.engines.errors import EngineUnavailable
from plateforme.pipeline.request_pipeline import RequestPipeline
from plateforme.storage.database import open_database
from plateforme.tenancy.accounts import Accounts
from plateforme.storage.conversation_tables import Conversation
from plateforme.tenancy.ids import as_utc, utcnow
from plateforme.tenancy.principal import Principal
from plateforme.traces.service import TraceService
from plateforme.usage.billing import Billing

MODEL = "scripted-model"
SEARCH = [{"type": "document_library", "library_ids": ["lib_1"]}]
LOOKUP = [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}]


class ScriptedChat:
    """The pipeline's "chat" capability: each model step plays the next scripted reply."""

    def __init__(self):
        self.replies: list = []
        self.requests: list = []

    def stream(self, request, tally=None):
        self.requests.append(request)
        return self._play(self.replies.pop(0))

    async def complete(self, request, tally=None):
        raise AssertionError("the loop streams every step")

    async def _play(self, reply):
        yield Delta(0, role="assistant")
        kind, value = reply
        if kind == "call":
            yield Delta(0, tool_calls=[{"id": "call_1", "type": "function", "index": 0,
                                        "function": {"name": value, "arguments": "{}"}}])
        else:
            for word in value.split():
                yield Delta(0, content=word + " ")
                await asyncio.sleep(0.01)
                if kind == "fail":
                    raise EngineUnavailable("the model's worker stopped")
                if kind == "slow":
                    await asyncio.sleep(30)
        yield Delta(0, finish_reason="tool_calls" if kind == "call" else "stop")
        yield Usage(10, 3)


class SearchTool:
    async def tools(self, principal, spec, param):
        async def run(args, context):
            return ToolOutcome(content="[1] found")
        return [PlatformTool("search", "search", {"type": "object"}, "document_library", run)]


class Agents:
    """The agents registry as the service and the loop read it (get by id and version)."""

    def __init__(self):
        self.records: dict[str, AgentRecord] = {}

    def add(self, agent_id: str, workspace_id: str, **body) -> AgentRecord:
        self.records[agent_id] = AgentRecord(agent_id, workspace_id, 1, [1], 1, utcnow(), utcnow(),
                                             {"model": MODEL, "name": agent_id, **body})
        return self.records[agent_id]

    def get(self, workspace_id, agent_id, version=None):
        record = self.records.get(agent_id)
        if record is None or record.workspace_id != workspace_id:
            raise NotFound(f"agent {agent_id!r} not found", "agent_id")
        return record


class Bench:
    def __init__(self, tmp):
        self.db = open_database(f"sqlite:///{tmp / 'service.db'}")
        ws = Accounts(self.db).create_workspace("svc").id
        self.principal = Principal(workspace_id=ws, key_id=None, user_id=None, role="admin")
        self.chat = ScriptedChat()
        pipeline = RequestPipeline(Billing(self.db), TraceService(self.db, None), None, {"chat": self.chat})
        self.agents = Agents()
        loop = ConversationLoop(pipeline, ToolsetResolver({"document_library": SearchTool()}), self.agents,
                                LoopLimits(max_steps=2))
        self.store = ConversationStore(self.db, "runner-test")
        self.service = ConversationService(self.store, loop, self.agents)

    def start(self, *replies, tools=None, **options):
        self.chat.replies = list(replies)
        return self.service.start(self.principal, "hello", {"model": MODEL, "tools": tools}, Options(**options))


@pytest.fixture
def bench(tmp_path):
    b = Bench(tmp_path)
    yield b
    b.db.dispose()


async def _events(response) -> list[dict]:
    out = []
    async for text in _sse(response):
        name, data = text.split("\n")[:2]
        event = json.loads(data[len("data: "):])
        assert name == f"event: {event['type']}" and text.endswith("\n\n")
        validate({"event": event["type"], "data": event}, "ConversationEvents")
        out.append(event)
    return out


def test_a_failure_after_the_stream_started_is_an_error_event_and_the_conversation_failed(bench):
    async def scenario():
        # A platform tool runs, twice, then the bound of two model steps stops the response.
        response = await bench.start(("call", "search"), ("call", "search"), tools=SEARCH)
        events = await _events(response)
        return response, events
    response, events = asyncio.run(scenario())
    types = [e["type"] for e in events]
    assert types == ["conversation.response.started"] + ["tool.execution.started", "tool.execution.done"] * 2 + \
        ["conversation.response.error"]
    assert events[-1]["code"] == 400 and "PLATEFORME_AGENT_MAX_STEPS" in events[-1]["message"]
    record = bench.store.get(bench.principal.workspace_id, response.conversation_id)
    assert record.status == "failed" and "PLATEFORME_AGENT_MAX_STEPS" in record.error
    kept = bench.store.entries(bench.principal.workspace_id, response.conversation_id)
    assert [e["type"] for e in kept] == ["message.input", "tool.execution", "tool.execution"]  # what was made is kept

    async def engine_dies():
        return await _events(await bench.start(("fail", "one two three")))
    events = asyncio.run(engine_dies())
    assert [e["type"] for e in events][-1] == "conversation.response.error" and events[-1]["code"] == 503
    assert "worker stopped" in events[-1]["message"]


def test_a_client_leaving_mid_stream_ends_the_response_failed(bench):
    async def scenario():
        response = await bench.start(("slow", "a long answer"))
        stream = _sse(response)
        first = await anext(stream)
        await anext(stream)  # a delta: the model is generating
        await stream.aclose()
        return response, first
    response, first = asyncio.run(scenario())
    assert first.startswith("event: conversation.response.started")
    record = bench.store.get(bench.principal.workspace_id, response.conversation_id)
    assert record.status == "failed" and "client left" in record.error


def test_a_client_leaving_on_a_done_event_finds_its_entry_kept(bench):
    """A tool execution's entry is stored before its tool.execution.done event goes out (and a
    function call's before its delta), so a client that stops reading there finds it in the history."""
    async def leave_on(event_type, *replies, tools):
        response = await bench.start(*replies, tools=tools)
        stream = _sse(response)
        async for text in stream:
            if text.startswith(f"event: {event_type}"):
                break
        await stream.aclose()
        return response.conversation_id

    def kept(conversation_id):
        return [e["type"] for e in bench.store.entries(bench.principal.workspace_id, conversation_id)]

    executed = asyncio.run(leave_on("tool.execution.done", ("call", "search"), ("slow", "more"), tools=SEARCH))
    assert kept(executed) == ["message.input", "tool.execution"]
    called = asyncio.run(leave_on("function.call.delta", ("call", "lookup"), tools=LOOKUP))
    assert kept(called) == ["message.input", "function.call"]


def test_one_response_at_a_time_and_a_refused_append_changes_nothing(bench):
    async def scenario():
        waiting = await bench.start(("call", "lookup"), tools=LOOKUP)
        with pytest.raises(Conflict):  # its response is not over yet
            await bench.service.append(bench.principal, waiting.conversation_id, "again", Options())
        body = await waiting.result()
        validate(body, "ConversationResponse")
        assert [o["type"] for o in body["outputs"]] == ["function.call"]
        cid = waiting.conversation_id
        assert bench.store.get(bench.principal.workspace_id, cid).status == "waiting"
        with pytest.raises(BadInput) as err:  # a result for no call of this conversation
            await bench.service.append(bench.principal, cid, [
                {"type": "function.result", "tool_call_id": "call_other", "result": "x"}], Options())
        assert err.value.param == "inputs.0.tool_call_id"
        assert bench.store.get(bench.principal.workspace_id, cid).status == "waiting"
        assert len(bench.store.entries(bench.principal.workspace_id, cid)) == 2
        bench.chat.replies = [("say", "done")]
        answered = await (await bench.service.append(bench.principal, cid, [
            {"type": "function.result", "tool_call_id": "call_1", "result": "42"}], Options())).result()
        assert [o["type"] for o in answered["outputs"]] == ["message.output"]
        record = bench.store.get(bench.principal.workspace_id, cid)
        assert record.status == "idle" and record.error is None
        stored = [e["id"] for e in bench.store.entries(bench.principal.workspace_id, cid)]
        assert stored[-1] == answered["outputs"][0]["id"] and len(stored) == 4
        unstored = await (await bench.start(("say", "hi"), store=False)).result()
        assert bench.store.list(bench.principal.workspace_id, page_size=10)[0].id != unstored["conversation_id"]
    asyncio.run(scenario())


def test_the_agent_a_handoff_moved_to_answers_the_next_append(bench):
    ws = bench.principal.workspace_id
    bench.agents.add("ag_billing", ws, name="Billing desk", instructions="You bill.")
    bench.agents.add("ag_front", ws, name="Front desk", instructions="You route.", handoffs=["ag_billing"])

    async def scenario():
        bench.chat.replies = [("call", handoff_name("Billing desk")), ("say", "billed")]
        started = await bench.service.start(bench.principal, "my invoice", {"agent_id": "ag_front"}, Options())
        first = await started.result()
        bench.chat.replies = [("say", "again")]
        again = await (await bench.service.append(bench.principal, started.conversation_id, "thanks",
                                                  Options())).result()
        return started.conversation_id, first, again
    cid, first, again = asyncio.run(scenario())
    assert [(o["type"], o.get("agent_id")) for o in first["outputs"]] == [("agent.handoff", None),
                                                                          ("message.output", "ag_billing")]
    record = bench.store.get(bench.principal.workspace_id, cid)
    assert (record.agent_id, record.active_agent_id, record.status) == ("ag_front", "ag_billing", "idle")
    assert again["outputs"][0]["agent_id"] == "ag_billing"
    assert bench.chat.requests[-1].messages[0]["content"].startswith("You bill.")
    with pytest.raises(NotFound) as err:
        asyncio.run(bench.service.start(bench.principal, "hi", {"agent_id": "ag_other"}, Options()))
    assert err.value.param == "agent_id"


def test_the_lease_is_renewed_while_a_response_runs(bench, monkeypatch):
    monkeypatch.setattr(service_module, "LEASE_S", 0.6)  # renewed every 0.2 s
    monkeypatch.setattr(store_module, "LEASE_S", 0.6)

    def lease(conversation_id):
        with bench.db.session() as s:
            return as_utc(s.get(Conversation, conversation_id).lease_until)

    async def scenario():
        response = await bench.start(("slow", "a long answer"))
        stream = _sse(response)
        await anext(stream)
        await anext(stream)  # generating (the stand-in then waits 30 s)
        ahead = []
        for _ in range(4):  # 2 s in all, past three lease lengths
            await asyncio.sleep(0.5)
            ahead.append((lease(response.conversation_id) - utcnow()).total_seconds())
        await stream.aclose()
        return response.conversation_id, ahead
    conversation_id, ahead = asyncio.run(scenario())
    assert all(seconds > 0 for seconds in ahead), ahead  # never lapsed
    assert lease(conversation_id) is None  # ended: no claim left
