"""/v1/conversations through the mistralai SDK's beta.conversations, against live servers, every
answer and event validated against Mistral's spec.

The shared default server (SmolLM2-135M, no auth): start/append/restart, get/list/history/messages/
delete, stream and not, a bare model with instructions, an agent at a version or an alias, store
false, a function-tool round trip (forced tool choice: the tiny model is made to call), bad input.
A server of the module's own (API keys, its data dir kept across starts): isolation between
workspaces, the platform SIGKILLed mid-response then started again (the cut-off conversation is
failed, not left running; a conversation started before goes on with the next append).
Generations are kept to a few tokens: assertions are on structure, never on the model's prose.
"""

import json
import signal

import httpx
import pytest
from mistralai.client import Mistral
from mistralai.client.errors import SDKError
from server_process import DEFAULT_MODEL, ServerProcess, default_model_entry
from spec_schema import validate

from plateforme.conversations.store import INTERRUPTED, ConversationStore
from plateforme.storage.database import open_database

KEY = "conversations-static-key"
FEW = {"max_tokens": 3, "temperature": 0}
WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "The weather of a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string", "enum": ["Paris", "Rome"]}},
                   "required": ["city"]}}}
OUTPUT_TYPES = {"message.output": "MessageOutputEntry", "function.call": "FunctionCallEntry",
                "tool.execution": "ToolExecutionEntry", "agent.handoff": "AgentHandoffEntry"}


def check_response(body: dict) -> dict:
    validate(body, "ConversationResponse")
    for entry in body["outputs"]:
        validate(entry, OUTPUT_TYPES[entry["type"]])
    assert body["usage"]["total_tokens"] == body["usage"]["prompt_tokens"] + body["usage"]["completion_tokens"]
    return body


def check_conversation(body: dict) -> dict:
    validate(body, "AgentConversation" if "agent_id" in body else "ModelConversation")
    return body


def sse_events(response: httpx.Response) -> list[tuple[str, dict]]:
    """The named events of a streamed answer, each validated as the spec's ConversationEvents."""
    events, name = [], None
    for line in response.iter_lines():
        if line.startswith("event: "):
            name = line[len("event: "):]
        elif line.startswith("data: "):
            data = json.loads(line[len("data: "):])
            validate({"event": name, "data": data}, "ConversationEvents")
            assert data["type"] == name
            events.append((name, data))
    return events


def error_of(response: httpx.Response, status: int, param: str | None = None) -> dict:
    body = response.json()
    assert response.status_code == status, body
    assert body["object"] == "error" and body["code"] == str(status) and body["message"], body
    if param is not None:
        assert body["param"] == param, body
    return body


@pytest.fixture(scope="module")
def http(server):
    with httpx.Client(base_url=server.url, timeout=300) as client:
        yield client


@pytest.fixture(scope="module")
def sdk(server) -> Mistral:
    return Mistral(api_key="unused", server_url=server.url, timeout_ms=300_000)


@pytest.fixture(scope="module")
def chat(http) -> dict:
    """A conversation with the bare model: started, then appended to (JSON)."""
    started = http.post("/v1/conversations", json={
        "model": DEFAULT_MODEL, "inputs": "Name a colour.", "instructions": "Answer in one word.",
        "completion_args": FEW, "name": "colours", "description": "a test", "metadata": {"suite": "conv", "n": 1}})
    assert started.status_code == 200, started.text
    first = check_response(started.json())
    appended = http.post(f"/v1/conversations/{first['conversation_id']}",
                         json={"inputs": [{"role": "user", "content": "Another."}], "completion_args": {"max_tokens": 2}})
    assert appended.status_code == 200, appended.text
    return {"id": first["conversation_id"], "first": first, "second": check_response(appended.json())}


def test_start_append_and_read_back(chat, http, sdk):
    first, second = chat["first"], chat["second"]
    assert [e["type"] for e in first["outputs"]] == ["message.output"]
    assert first["outputs"][0]["model"] == DEFAULT_MODEL and first["outputs"][0]["agent_id"] is None
    assert 1 <= first["usage"]["completion_tokens"] <= 3 and second["usage"]["completion_tokens"] <= 2
    # The second turn read the first: its prompt holds the history.
    assert second["usage"]["prompt_tokens"] > first["usage"]["prompt_tokens"]
    got = check_conversation(http.get(f"/v1/conversations/{chat['id']}").json())
    assert (got["model"], got["instructions"], got["name"], got["description"], got["metadata"]) == \
        (DEFAULT_MODEL, "Answer in one word.", "colours", "a test", {"suite": "conv", "n": 1})
    assert got["completion_args"]["max_tokens"] == 3
    history = http.get(f"/v1/conversations/{chat['id']}/history").json()
    validate(history, "ConversationHistory")
    assert [e["type"] for e in history["entries"]] == ["message.input", "message.output"] * 2
    assert history["entries"][1] == first["outputs"][0] and history["entries"][3] == second["outputs"][0]
    messages = http.get(f"/v1/conversations/{chat['id']}/messages").json()
    validate(messages, "ConversationMessages")
    assert [m["id"] for m in messages["messages"]] == [e["id"] for e in history["entries"]]
    # The SDK reads the same.
    assert sdk.beta.conversations.get(conversation_id=chat["id"]).instructions == "Answer in one word."
    assert [e.id for e in sdk.beta.conversations.get_history(conversation_id=chat["id"]).entries] == \
        [e["id"] for e in history["entries"]]
    assert len(sdk.beta.conversations.get_messages(conversation_id=chat["id"]).messages) == 4
    listed = http.get("/v1/conversations", params={"metadata": json.dumps({"suite": "conv"})}).json()
    assert [c["id"] for c in listed] == [chat["id"]] and all(check_conversation(c) for c in listed)
    assert chat["id"] in [c.id for c in sdk.beta.conversations.list(page_size=100)]
    assert sdk.beta.conversations.list(metadata={"suite": "conv", "n": 2}) == []


def test_streamed_start_append_and_restart(chat, http, sdk):
    with http.stream("POST", "/v1/conversations", json={
            "model": DEFAULT_MODEL, "inputs": "Hi", "stream": True, "completion_args": FEW}) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        events = sse_events(r)
    names = [n for n, _ in events]
    assert names[0] == "conversation.response.started" and names[-1] == "conversation.response.done"
    assert set(names[1:-1]) == {"message.output.delta"}
    conversation_id = events[0][1]["conversation_id"]
    text = "".join(d["content"] for n, d in events if n == "message.output.delta")
    entries = http.get(f"/v1/conversations/{conversation_id}/history").json()["entries"]
    assert [e["type"] for e in entries] == ["message.input", "message.output"]
    assert entries[1]["content"] == text and entries[1]["id"] == events[1][1]["id"]
    assert events[-1][1]["usage"]["completion_tokens"] == len(names) - 2 or text  # a delta per token, or fewer
    # Append, streamed through the SDK.
    seen = [e.event for e in sdk.beta.conversations.append_stream(
        conversation_id=conversation_id, inputs="And?", completion_args={"max_tokens": 2})]
    assert seen[0] == "conversation.response.started" and seen[-1] == "conversation.response.done"
    assert len(http.get(f"/v1/conversations/{conversation_id}/history").json()["entries"]) == 4
    # Restart the first conversation from its first answer: a new conversation, the source untouched.
    source = http.get(f"/v1/conversations/{chat['id']}/history").json()["entries"]
    restarted = sdk.beta.conversations.restart(conversation_id=chat["id"], from_entry_id=source[1]["id"],
                                               inputs="Yet another.", completion_args={"max_tokens": 2},
                                               metadata={"restarted": True})
    assert restarted.conversation_id not in (chat["id"], conversation_id)
    copied = http.get(f"/v1/conversations/{restarted.conversation_id}/history").json()["entries"]
    assert [(e["type"], e.get("content")) for e in copied[:2]] == [(e["type"], e["content"]) for e in source[:2]]
    assert {e["id"] for e in copied[:2]}.isdisjoint(e["id"] for e in source)
    assert copied[2]["content"] == "Yet another." and copied[3]["type"] == "message.output"
    assert len(copied) == 4 and len(http.get(f"/v1/conversations/{chat['id']}/history").json()["entries"]) == 4
    got = check_conversation(http.get(f"/v1/conversations/{restarted.conversation_id}").json())
    assert got["metadata"] == {"restarted": True} and got["instructions"] == "Answer in one word."
    with http.stream("POST", f"/v1/conversations/{restarted.conversation_id}/restart", json={
            "from_entry_id": copied[0]["id"], "stream": True, "store": False, "completion_args": {"max_tokens": 1}}) as r:
        names = [n for n, _ in sse_events(r)]
    assert names[0] == "conversation.response.started" and names[-1] == "conversation.response.done"
    # Delete: gone for every route.
    sdk.beta.conversations.delete(conversation_id=conversation_id)
    for path in ("", "/history", "/messages"):
        error_of(http.get(f"/v1/conversations/{conversation_id}{path}"), 404, "conversation_id")


def test_store_false_keeps_nothing(chat, http, sdk):
    answer = sdk.beta.conversations.start(model=DEFAULT_MODEL, inputs="Hi", store=False, completion_args=FEW)
    assert answer.conversation_id.startswith("conv_") and answer.outputs
    with pytest.raises(SDKError) as err:
        sdk.beta.conversations.get(conversation_id=answer.conversation_id)
    assert err.value.status_code == 404
    before = http.get(f"/v1/conversations/{chat['id']}/history").json()["entries"]
    unstored = http.post(f"/v1/conversations/{chat['id']}", json={"inputs": "More?", "store": False,
                                                                 "completion_args": {"max_tokens": 1}})
    check_response(unstored.json())
    assert http.get(f"/v1/conversations/{chat['id']}/history").json()["entries"] == before


def test_function_tool_round_trip(http, sdk):
    started = sdk.beta.conversations.start(model=DEFAULT_MODEL, inputs="What is the weather in Paris?",
                                           tools=[WEATHER], completion_args={"tool_choice": "any", "temperature": 0,
                                                                            "max_tokens": 96})
    calls = [o for o in started.outputs if o.type == "function.call"]
    assert calls and calls[0].name == "get_weather", started.outputs
    cid = started.conversation_id
    kept = check_conversation(http.get(f"/v1/conversations/{cid}").json())["tools"]
    assert [(t["type"], t["function"]["name"], t["function"]["parameters"]) for t in kept] == \
        [("function", "get_weather", WEATHER["function"]["parameters"])]
    # A result answering no call of this conversation is refused; so is a plain message while it waits.
    error_of(http.post(f"/v1/conversations/{cid}", json={"inputs": [
        {"type": "function.result", "tool_call_id": "call_unknown", "result": "sunny"}]}), 400, "inputs.0.tool_call_id")
    error_of(http.post(f"/v1/conversations/{cid}", json={"inputs": "hello"}), 400, "inputs")
    answered = http.post(f"/v1/conversations/{cid}", json={"inputs": [
        {"type": "function.result", "tool_call_id": calls[0].tool_call_id, "result": '{"sky": "sunny"}'}],
        "completion_args": {"max_tokens": 3}})
    body = check_response(answered.json())
    assert [o["type"] for o in body["outputs"]][-1] == "message.output"
    types = [e["type"] for e in http.get(f"/v1/conversations/{cid}/history").json()["entries"]]
    assert types[:3] == ["message.input", "function.call", "function.result"] and types[-1] == "message.output"


def test_with_an_agent_at_a_version_or_an_alias(http, sdk):
    agent = sdk.beta.agents.create(model=DEFAULT_MODEL, name="brief", instructions="Answer briefly.",
                                   completion_args={"max_tokens": 1})
    first_version = agent.version
    updated = sdk.beta.agents.update(agent_id=agent.id, completion_args={"max_tokens": 3})
    assert updated.version != first_version
    sdk.beta.agents.create_version_alias(agent_id=agent.id, alias="stable", version=first_version)
    # The alias names the first version (1 token at most); no version: the current one (3).
    pinned = http.post("/v1/conversations", json={"agent_id": agent.id, "agent_version": "stable", "inputs": "Hi"})
    current = sdk.beta.conversations.start(agent_id=agent.id, inputs="Hi")
    body = check_response(pinned.json())
    assert body["usage"]["completion_tokens"] == 1 and body["outputs"][0]["agent_id"] == agent.id
    assert current.usage.completion_tokens > 1 and current.outputs[0].agent_id == agent.id
    got = check_conversation(http.get(f"/v1/conversations/{body['conversation_id']}").json())
    assert (got["agent_id"], got["agent_version"]) == (agent.id, "stable")
    # An append keeps the version; the request's completion_args lay over the agent's.
    again = http.post(f"/v1/conversations/{body['conversation_id']}",
                      json={"inputs": "Go on", "completion_args": {"max_tokens": 2}}).json()
    assert check_response(again)["usage"]["completion_tokens"] == 2
    error_of(http.post("/v1/conversations", json={"agent_id": agent.id, "agent_version": 99, "inputs": "Hi"}), 404)
    error_of(http.post("/v1/conversations", json={"agent_id": agent.id, "instructions": "x", "inputs": "Hi"}),
             400, "instructions")


def test_a_handoff_through_the_sdk(http, sdk):
    """The front agent's only tool is its handoff, and its first step must call a tool, so it hands
    off; server-side, the billing agent answers in the same streamed response, and the next append."""
    billing = sdk.beta.agents.create(model=DEFAULT_MODEL, name="billing desk", instructions="Answer in one word.",
                                     completion_args=FEW)
    front = sdk.beta.agents.create(model=DEFAULT_MODEL, name="front desk", handoffs=[billing.id],
                                   instructions="Hand billing questions to the billing desk.",
                                   completion_args={"tool_choice": "any", "max_tokens": 48, "temperature": 0})
    with http.stream("POST", "/v1/conversations", json={"agent_id": front.id, "inputs": "My invoice is wrong.",
                                                        "stream": True}) as streamed:
        assert streamed.status_code == 200
        events = sse_events(streamed)
    kinds = [k for k, _ in events]
    assert kinds[0] == "conversation.response.started" and kinds[-1] == "conversation.response.done", events
    assert kinds.index("agent.handoff.started") < kinds.index("agent.handoff.done") < kinds.index(
        "message.output.delta"), kinds
    started, done = dict(events)["agent.handoff.started"], dict(events)["agent.handoff.done"]
    assert (started["previous_agent_id"], started["previous_agent_name"]) == (front.id, "front desk")
    assert (done["next_agent_id"], done["next_agent_name"]) == (billing.id, "billing desk")
    assert all(d["agent_id"] == billing.id for k, d in events if k == "message.output.delta")
    conversation = events[0][1]["conversation_id"]
    history = http.get(f"/v1/conversations/{conversation}/history").json()
    validate(history, "ConversationHistory")
    handoff = [e for e in history["entries"] if e["type"] == "agent.handoff"]
    assert [(h["previous_agent_id"], h["next_agent_id"]) for h in handoff] == [(front.id, billing.id)]
    # The conversation stays with the agent it was handed to.
    more = sdk.beta.conversations.append(conversation_id=conversation, inputs="And the refund?", completion_args=FEW)
    body = check_response(more.model_dump(mode="json", by_alias=True, exclude_none=True))
    assert [o["agent_id"] for o in body["outputs"] if o["type"] == "message.output"] == [billing.id]


def test_bad_input_is_a_clear_4xx(chat, http):
    post = http.post
    error_of(post("/v1/conversations", json={"agent_id": "ag_unknown", "inputs": "Hi"}), 404, "agent_id")
    error_of(post("/v1/conversations", json={"inputs": "Hi"}), 400, "model")
    error_of(post("/v1/conversations", json={"model": "no-such-model", "inputs": "Hi", "stream": True}), 400, "model")
    error_of(post("/v1/conversations", json={"model": DEFAULT_MODEL, "agent_id": "ag_x", "inputs": "Hi"}), 400, "model")
    error_of(post("/v1/conversations", json={"model": DEFAULT_MODEL, "inputs": "Hi",
                                             "tools": [{"type": "web_search"}]}), 400, "tools.0.type")
    error_of(post("/v1/conversations", json={"model": DEFAULT_MODEL, "inputs": [
        {"type": "function.result", "tool_call_id": "call_1", "result": "42"}]}), 400, "inputs.0.tool_call_id")
    error_of(post("/v1/conversations", json={"model": DEFAULT_MODEL, "inputs": [{"type": "message.input"}]}),
             400, "inputs.0.content")
    error_of(post("/v1/conversations", json={"model": DEFAULT_MODEL}), 422)
    error_of(post("/v1/conversations", json={"model": DEFAULT_MODEL, "inputs": "Hi", "colour": "red"}), 422)
    other = post("/v1/conversations", json={"model": DEFAULT_MODEL, "inputs": "x", "completion_args": {"max_tokens": 1}})
    foreign = http.get(f"/v1/conversations/{other.json()['conversation_id']}/history").json()["entries"][0]["id"]
    error_of(post(f"/v1/conversations/{chat['id']}/restart", json={"from_entry_id": foreign, "inputs": "Hi"}),
             400, "from_entry_id")
    error_of(post("/v1/conversations/conv_nope/restart", json={"from_entry_id": foreign}), 404, "conversation_id")
    error_of(post("/v1/conversations/conv_nope", json={"inputs": "Hi"}), 404, "conversation_id")
    error_of(http.delete("/v1/conversations/conv_nope"), 404, "conversation_id")
    error_of(http.get("/v1/conversations", params={"metadata": "[1]"}), 400, "metadata")
    error_of(http.get("/v1/conversations", params={"page": 10**19}), 422)  # was a 500 (found by test_fuzz)
    error_of(http.get("/v1/agents", params={"page": 10**19}), 422)
    # A refused append leaves the conversation as it was (not running: the next append is taken).
    error_of(post(f"/v1/conversations/{chat['id']}", json={"tool_confirmations": [
        {"tool_call_id": "call_1", "confirmation": "allow"}]}), 400, "tool_confirmations.0.tool_call_id")
    assert post(f"/v1/conversations/{chat['id']}", json={"inputs": "ok", "store": False,
                                                         "completion_args": {"max_tokens": 1}}).status_code == 200


# -- a server of the module's own: keys, restarts --------------------------------------------------


class Platform:
    def __init__(self, workdir):
        self.workdir, self.server = workdir, None

    def start(self) -> ServerProcess:
        self.server = ServerProcess(self.workdir, [default_model_entry(parallel=2)], {"PLATEFORME_API_KEY": KEY})
        self.server.wait_healthy()
        return self.server

    def client(self, key: str = KEY) -> httpx.Client:
        return httpx.Client(base_url=self.server.url, headers={"Authorization": f"Bearer {key}"}, timeout=300)


@pytest.fixture(scope="module")
def platform(tmp_path_factory):
    platform = Platform(tmp_path_factory.mktemp("conversations"))
    platform.start()
    yield platform
    platform.server.stop()


def _other_key(platform) -> str:
    with platform.client() as admin:
        ws = admin.post("/v1/admin/workspaces", json={"name": "other"}).json()
        user = admin.post(f"/v1/admin/workspaces/{ws['id']}/users", json={"email": "b@other.example"}).json()
        return admin.post("/v1/admin/keys", json={"user_id": user["id"], "name": "b"}).json()["key"]


def test_isolation_restart_and_a_response_cut_off(platform):
    other = _other_key(platform)
    with platform.client() as a, platform.client(other) as b:
        kept = check_response(a.post("/v1/conversations", json={
            "model": DEFAULT_MODEL, "inputs": "Hi", "completion_args": FEW}).json())["conversation_id"]
        entry = a.get(f"/v1/conversations/{kept}/history").json()["entries"][0]["id"]
        for method, path, body in (("GET", "", None), ("GET", "/history", None), ("GET", "/messages", None),
                                   ("POST", "", {"inputs": "Hi"}), ("DELETE", "", None),
                                   ("POST", "/restart", {"from_entry_id": entry})):
            error_of(b.request(method, f"/v1/conversations/{kept}{path}", json=body), 404, "conversation_id")
        assert b.get("/v1/conversations").json() == []
        assert kept in [c["id"] for c in a.get("/v1/conversations").json()]
        # A long response, the platform SIGKILLed while it streams.
        with a.stream("POST", "/v1/conversations", json={
                "model": DEFAULT_MODEL, "inputs": "Write a long story about the sea.", "stream": True,
                "completion_args": {"max_tokens": 2000, "temperature": 1}}) as r:
            lines = r.iter_lines()
            started = json.loads(next(line for line in lines if line.startswith("data: "))[len("data: "):])
            next(line for line in lines if line.startswith("event: message.output.delta"))
            platform.server.proc.send_signal(signal.SIGKILL)
            platform.server.proc.wait()
    platform.server.stop()  # (reaped: closes its log)
    cut = started["conversation_id"]
    platform.start()  # the same data dir and database
    db = open_database(f"sqlite:///{platform.workdir / 'data' / 'plateforme.db'}")
    try:
        record = ConversationStore(db, "test").get("ws_default", cut)
        assert (record.status, record.error) == ("failed", INTERRUPTED)
    finally:
        db.dispose()
    with platform.client() as a:
        assert [e["type"] for e in a.get(f"/v1/conversations/{cut}/history").json()["entries"]] == ["message.input"]
        # Both conversations take the next append: the cut one is not left running, the other survived.
        for conversation_id in (cut, kept):
            again = a.post(f"/v1/conversations/{conversation_id}", json={"inputs": "Again",
                                                                         "completion_args": {"max_tokens": 1}})
            assert again.status_code == 200, again.text
        assert len(a.get(f"/v1/conversations/{kept}/history").json()["entries"]) == 4
