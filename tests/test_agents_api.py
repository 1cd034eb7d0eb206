"""The Agents API through the mistralai SDK's beta.agents (every /v1/agents route) and
agents.complete / agents.stream (POST /v1/agents/completions), on a live server: answers validated
against Mistral's spec, versions and aliases, list filters and cursor pages, bad input answered in
Mistral's error shape, and agents of one workspace unknown (404) to another.

Agents and completions run on the session's shared server (default model). Isolation needs real
keys: a small server of its own with auth, whose one chat model is the shared server itself
reached as a remote OpenAI-compatible engine (no model worker of its own to start).
"""

import json

import httpx
import pytest
from mistralai.client import Mistral
from mistralai.client.errors import MistralError
from server_process import DEFAULT_MODEL
from spec_schema import sse_chunks, validate

ADMIN_KEY = "agents-test-admin-key"
ASK = [{"role": "user", "content": "What is the capital of France?"}]
WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "The weather in a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}


@pytest.fixture(scope="module")
def sdk(server):
    with Mistral(api_key="unused", server_url=server.url) as client:
        yield client


@pytest.fixture(scope="module")
def http(server):
    with httpx.Client(base_url=server.url, timeout=300) as client:
        yield client


def _ok(response: httpx.Response, schema: str | None = "Agent"):
    assert response.status_code == 200, response.text
    body = response.json()
    if schema:
        validate(body, schema)
    return body


def _error(response: httpx.Response, status: int, param: str | None = None) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["object"] == "error" and body["code"] == str(status) and body["message"], body
    if param is not None:
        assert body["param"] == param, body
    return body


def _create(sdk, name: str, **fields):
    return sdk.beta.agents.create(model=DEFAULT_MODEL, name=name, **fields)


def test_create_get_update_versions_and_aliases_through_the_sdk(sdk, http):
    agent = _create(sdk, "pirate", description="Talks like a pirate", instructions="Answer like a pirate.",
                    tools=[WEATHER], completion_args={"temperature": 0.2, "max_tokens": 16},
                    metadata={"team": "crew"}, version_message="first")
    assert agent.id.startswith("ag_") and agent.version == 0 and agent.versions == [0]
    assert agent.model == DEFAULT_MODEL and agent.tools[0].function.name == "get_weather"
    assert agent.completion_args.temperature == 0.2 and agent.version_message == "first"
    first = _ok(http.get(f"/v1/agents/{agent.id}"))
    assert first["source"] == "api" and first["deployment_chat"] is False and first["object"] == "agent"

    # Each update is a new version with only the changed fields; the others are kept.
    updated = sdk.beta.agents.update(agent_id=agent.id, instructions="Answer like a sailor.",
                                     version_message="sailor")
    assert updated.version == 1 and updated.versions == [0, 1]
    assert updated.instructions == "Answer like a sailor." and updated.description == "Talks like a pirate"
    assert updated.tools[0].function.name == "get_weather" and updated.metadata == {"team": "crew"}
    assert updated.version_message == "sailor"
    renamed = _ok(http.patch(f"/v1/agents/{agent.id}", json={"name": "sailor", "description": None}))
    assert renamed["version"] == 2 and renamed["name"] == "sailor" and renamed["description"] is None
    assert renamed["version_message"] is None  # a message belongs to its version only
    # An update that changes nothing writes no version.
    assert _ok(http.patch(f"/v1/agents/{agent.id}", json={"name": "sailor"}))["version"] == 2

    # Versions: newest first, each as it was written; one by number.
    versions = sdk.beta.agents.list_versions(agent_id=agent.id)
    assert [v.version for v in versions] == [2, 1, 0]
    for v in http.get(f"/v1/agents/{agent.id}/versions", params={"page_size": 2}).json():
        validate(v, "Agent")
    assert [v["version"] for v in http.get(f"/v1/agents/{agent.id}/versions",
                                           params={"page": 1, "page_size": 2}).json()] == [0]
    assert sdk.beta.agents.get_version(agent_id=agent.id, version="0").instructions == "Answer like a pirate."
    assert sdk.beta.agents.get(agent_id=agent.id, agent_version=1).instructions == "Answer like a sailor."

    # Switch the served version back to 0: GET without a version serves it.
    switched = sdk.beta.agents.update_version(agent_id=agent.id, version=0)
    assert switched.version == 0 and switched.name == "pirate" and switched.versions == [0, 1, 2]
    assert sdk.beta.agents.get(agent_id=agent.id).version == 0
    # The next update starts from the served version and is numbered after the newest.
    assert sdk.beta.agents.update(agent_id=agent.id, description="v3").version == 3

    # Aliases: create, move, list, read through, delete.
    alias = sdk.beta.agents.create_version_alias(agent_id=agent.id, alias="stable", version=1)
    assert alias.alias == "stable" and alias.version == 1
    validate(_ok(http.put(f"/v1/agents/{agent.id}/aliases", params={"alias": "beta", "version": 2}), None),
             "AgentAliasResponse")
    moved = sdk.beta.agents.create_version_alias(agent_id=agent.id, alias="stable", version=0)
    assert moved.version == 0 and moved.created_at == alias.created_at
    listed = _ok(http.get(f"/v1/agents/{agent.id}/aliases"), None)
    for a in listed:
        validate(a, "AgentAliasResponse")
    assert {(a["alias"], a["version"]) for a in listed} == {("stable", 0), ("beta", 2)}
    assert sdk.beta.agents.get(agent_id=agent.id, agent_version="beta").version == 2
    assert sdk.beta.agents.get_version(agent_id=agent.id, version="stable").name == "pirate"
    sdk.beta.agents.delete_version_alias(agent_id=agent.id, alias="beta")
    assert [a.alias for a in sdk.beta.agents.list_version_aliases(agent_id=agent.id)] == ["stable"]
    _error(http.get(f"/v1/agents/{agent.id}", params={"agent_version": "beta"}), 404, "agent_version")

    # Delete: gone, and its versions and aliases with it.
    sdk.beta.agents.delete(agent_id=agent.id)
    _error(http.get(f"/v1/agents/{agent.id}"), 404, "agent_id")
    _error(http.get(f"/v1/agents/{agent.id}/aliases"), 404)
    _error(http.delete(f"/v1/agents/{agent.id}"), 404)


def test_list_filters_and_cursor_pages(sdk, http):
    tag = {"suite": "listing"}
    made = [_create(sdk, f"lister-{i}", metadata={**tag, "n": i}) for i in range(5)]
    ids = [a.id for a in reversed(made)]  # newest first
    listed = sdk.beta.agents.list(metadata=tag, page_size=100)
    assert [a.id for a in listed] == ids
    body = http.get("/v1/agents", params={"metadata": json.dumps(tag), "page": 1, "page_size": 2})
    assert [a["id"] for a in _ok(body, None)] == ids[2:4]
    for a in body.json():
        validate(a, "Agent")
    assert [a.id for a in sdk.beta.agents.list(name="lister-3")] == [made[3].id]
    assert [a.id for a in sdk.beta.agents.list(search="LISTER-4")] == [made[4].id]
    assert [a.id for a in sdk.beta.agents.list(search=made[2].id[-10:])] == [made[2].id]
    assert [a.id for a in sdk.beta.agents.list(id=made[1].id)] == [made[1].id]
    assert [a.id for a in sdk.beta.agents.list(metadata={**tag, "n": 0})] == [made[0].id]
    assert sdk.beta.agents.list(metadata=tag, sources=["playground"]) == []
    assert len(sdk.beta.agents.list(metadata=tag, sources=["api"])) == 5
    assert sdk.beta.agents.list(metadata=tag, deployment_chat=True) == []
    sdk.beta.agents.update(agent_id=made[0].id, deployment_chat=True)
    assert [a.id for a in sdk.beta.agents.list(metadata=tag, deployment_chat=True)] == [made[0].id]

    # /pages: the opaque cursor walks the same order without repeats or gaps.
    seen, token = [], None
    while True:
        params = {"metadata": json.dumps(tag), "page_size": 2, **({"page_token": token} if token else {})}
        page = _ok(http.get("/v1/agents/pages", params=params), "AgentListPage")
        seen += [a["id"] for a in page["data"]]
        token = page["next_page_token"]
        if token is None:
            break
    assert seen == ids
    page = sdk.beta.agents.list_pages(metadata=tag, page_size=3)
    assert [a.id for a in page.result.data] == ids[:3] and page.result.next_page_token
    _error(http.get("/v1/agents/pages", params={"page_token": "not-a-cursor"}), 400, "page_token")
    _error(http.get("/v1/agents", params={"metadata": "[1]"}), 400, "metadata")
    _error(http.get("/v1/agents", params={"sources": "email"}), 400, "sources")
    _error(http.get("/v1/agents", params={"page_size": 0}), 422)


@pytest.mark.parametrize(("change", "status", "param"), [
    ({"model": "no-such-model"}, 400, "model"),
    ({"model": "multilingual-e5-small"}, 400, "model"),  # an embedding model
    ({"handoffs": ["ag_00000000000000000000000000000000"]}, 400, "handoffs"),
    ({"tools": [{"type": "web_search"}]}, 400, "tools.0.type"),
    ({"tools": [{"type": "function", "function": {"name": "x", "parameters": {}}}] * 2}, 400, "tools.1.function.name"),
    ({"guardrails": [{"moderation_llm_v2": {"action": "explode"}}]}, 400, None),
    ({"tools": [{"type": "document_library"}]}, 422, None),  # library_ids missing
    ({"unknown_field": 1}, 422, None),
    ({"version_message": "x" * 501}, 422, None),
])
def test_bad_definitions_are_refused_naming_the_field(http, change, status, param):
    body = {"model": DEFAULT_MODEL, "name": "bad", **change}
    error = _error(http.post("/v1/agents", json=body), status, param)
    if status == 400 and param is None:
        assert error["param"].startswith("guardrails"), error
    # The same change as an update of a good agent.
    if status == 400:
        good = _ok(http.post("/v1/agents", json={"model": DEFAULT_MODEL, "name": "good"}))
        _error(http.patch(f"/v1/agents/{good['id']}", json=change), 400, param if param else error["param"])
        assert http.get(f"/v1/agents/{good['id']}").json()["version"] == 0  # nothing written


def test_handoffs_self_versions_and_aliases_errors(sdk, http):
    target = _create(sdk, "target")
    agent = _create(sdk, "router", handoffs=[target.id])
    assert agent.handoffs == [target.id]
    _error(http.patch(f"/v1/agents/{agent.id}", json={"handoffs": [agent.id]}), 400, "handoffs")
    _error(http.patch(f"/v1/agents/{agent.id}/version", params={"version": 7}), 404, "version")
    _error(http.get(f"/v1/agents/{agent.id}/versions/7"), 404, "agent_version")
    _error(http.put(f"/v1/agents/{agent.id}/aliases", params={"alias": "prod", "version": 3}), 404, "version")
    _error(http.put(f"/v1/agents/{agent.id}/aliases", params={"alias": "Bad Alias", "version": 0}), 422)
    _error(http.delete(f"/v1/agents/{agent.id}/aliases", params={"alias": "nope"}), 404, "alias")
    with pytest.raises(MistralError) as raised:
        sdk.beta.agents.get(agent_id="ag_unknown")
    assert raised.value.status_code == 404


def test_agent_completions_complete_and_stream(sdk, http):
    agent = _create(sdk, "geographer", instructions="Answer in one short English sentence.",
                    completion_args={"temperature": 0, "max_tokens": 12})
    answer = sdk.agents.complete(agent_id=agent.id, messages=ASK)
    assert answer.model == DEFAULT_MODEL and answer.choices[0].message.content
    assert answer.usage.completion_tokens <= 12  # the agent's max_tokens
    raw = http.post("/v1/agents/completions", json={"agent_id": agent.id, "messages": ASK})
    validate(_ok(raw, None), "ChatCompletionResponse")
    assert raw.json()["choices"][0]["message"]["content"] == answer.choices[0].message.content  # temperature 0
    # The same as a chat completion whose system message is the agent's instructions.
    system = [{"role": "system", "content": "Answer in one short English sentence."}]
    chat = http.post("/v1/chat/completions", json={"model": DEFAULT_MODEL, "messages": system + ASK,
                                                   "temperature": 0, "max_tokens": 12}).json()
    assert chat["usage"] == answer.usage.model_dump(include={"prompt_tokens", "completion_tokens", "total_tokens"})
    assert chat["choices"][0]["message"]["content"] == answer.choices[0].message.content
    # The request's own fields override the agent's completion_args.
    short = sdk.agents.complete(agent_id=agent.id, messages=ASK, max_tokens=2)
    assert short.usage.completion_tokens <= 2 and short.choices[0].finish_reason == "length"

    events = list(sdk.agents.stream(agent_id=agent.id, messages=ASK))
    text = "".join(e.data.choices[0].delta.content or "" for e in events if e.data.choices)
    assert text == answer.choices[0].message.content and events[-1].data.usage.completion_tokens > 0
    streamed = http.post("/v1/agents/completions", json={"agent_id": agent.id, "messages": ASK, "stream": True})
    chunks, done = sse_chunks(streamed.text)
    assert done and chunks
    for chunk in chunks:
        validate(chunk, "CompletionChunk")


def test_agent_completions_with_function_tools_and_bad_input(sdk, http):
    agent = _create(sdk, "forecaster", tools=[WEATHER],
                    completion_args={"tool_choice": "any", "temperature": 0, "max_tokens": 64})
    answer = sdk.agents.complete(agent_id=agent.id, messages=[{"role": "user", "content": "Weather in Paris?"}],
                                 parallel_tool_calls=False)
    call = answer.choices[0].message.tool_calls[0]
    assert answer.choices[0].finish_reason == "tool_calls" and call.function.name == "get_weather"
    # The request's function tools join the agent's.
    extra = {**WEATHER, "function": {**WEATHER["function"], "name": "get_time"}}
    forced = http.post("/v1/agents/completions", json={
        "agent_id": agent.id, "messages": ASK, "tools": [extra], "parallel_tool_calls": False,
        "tool_choice": {"type": "function", "function": {"name": "get_time"}}})
    assert _ok(forced, None)["choices"][0]["message"]["tool_calls"][0]["function"]["name"] == "get_time"

    _error(http.post("/v1/agents/completions", json={"agent_id": "ag_unknown", "messages": ASK}), 404, "agent_id")
    _error(http.post("/v1/agents/completions", json={"agent_id": agent.id, "messages": ASK,
                                                      "tools": [{"type": "code_interpreter"}]}), 400, "tools.0.type")
    _error(http.post("/v1/agents/completions", json={"agent_id": agent.id, "messages": ASK, "tools": [WEATHER]}),
           400, "tools.0.function.name")  # already a tool of the agent
    _error(http.post("/v1/agents/completions", json={"agent_id": agent.id, "messages": []}), 422)
    _error(http.post("/v1/agents/completions", json={"agent_id": agent.id, "messages": ASK,
                                                      "tools": [{"type": "document_library", "library_ids": ["x"]}]}),
           400, "tools.0.type")  # platform tools belong in the agent's definition


@pytest.fixture(scope="module")
def two_workspaces(start_server, server):
    """A server with real keys (two workspaces), its chat model the shared server as a remote engine."""
    remote = {"name": DEFAULT_MODEL, "engine": "openai", "base_url": f"{server.url}/v1", "context_length": 2048}
    platform = start_server([remote], env={"PLATEFORME_API_KEY": ADMIN_KEY})
    keys = {}
    with httpx.Client(base_url=platform.url, headers={"Authorization": f"Bearer {ADMIN_KEY}"}, timeout=30) as admin:
        for name in ("north", "south"):
            ws = admin.post("/v1/admin/workspaces", json={"name": name}).json()["id"]
            user = admin.post(f"/v1/admin/workspaces/{ws}/users", json={"email": f"dev@{name}.example"}).json()
            keys[name] = admin.post("/v1/admin/keys", json={"user_id": user["id"]}).json()["key"]
    return platform, keys


def test_another_workspace_cannot_see_or_touch_an_agent(two_workspaces):
    platform, keys = two_workspaces
    with Mistral(api_key=keys["north"], server_url=platform.url) as north, \
            httpx.Client(base_url=platform.url, headers={"Authorization": f"Bearer {keys['south']}"},
                         timeout=60) as south:
        _isolated(north, south)


def _isolated(north: Mistral, south: httpx.Client) -> None:
    agent = _create(north, "private", instructions="Answer briefly.", completion_args={"max_tokens": 4})
    assert north.agents.complete(agent_id=agent.id, messages=ASK).choices[0].message.content is not None
    path = f"/v1/agents/{agent.id}"
    for method, url, kwargs in [
        ("GET", path, {}), ("PATCH", path, {"json": {"name": "stolen"}}), ("DELETE", path, {}),
        ("PATCH", f"{path}/version", {"params": {"version": 0}}), ("GET", f"{path}/versions", {}),
        ("GET", f"{path}/versions/0", {}), ("GET", f"{path}/aliases", {}),
        ("PUT", f"{path}/aliases", {"params": {"alias": "mine", "version": 0}}),
        ("DELETE", f"{path}/aliases", {"params": {"alias": "mine"}}),
        ("POST", "/v1/agents/completions", {"json": {"agent_id": agent.id, "messages": ASK}}),
    ]:
        _error(south.request(method, url, **kwargs), 404)
    assert south.get("/v1/agents", params={"id": agent.id}).json() == []
    assert _ok(south.get("/v1/agents/pages"), "AgentListPage")["data"] == []
    # Nor hand off to it.
    _error(south.post("/v1/agents", json={"model": DEFAULT_MODEL, "name": "thief", "handoffs": [agent.id]}),
           400, "handoffs")
    assert north.beta.agents.get(agent_id=agent.id).name == "private"  # untouched


def _requests(http) -> int:
    rows = http.get("/v1/usage", params={"group_by": "model"}).json()["data"]
    return sum(r["requests"] for r in rows if r["model"] == DEFAULT_MODEL)


def test_an_agent_with_platform_tools_answers_through_the_loop(sdk, http):
    """A document_library agent as a chat completion goes through the conversation loop: its tools
    are resolved there (an unreadable library is the loop's 400 naming it), and the answer is a
    chat completion, JSON or chunks. With tool_choice "none" it is one cheap model step (the
    tiny model's forced tool calls run on for hundreds of tokens; the loop's tool runs are
    tested in test_conversation_loop.py and test_agent_library.py)."""
    library = http.post("/v1/libraries", json={"name": "agents-completion-library"})
    assert library.status_code in (200, 201), library.text
    agent = _create(sdk, "librarian", instructions="Answer from the library.",
                    tools=[{"type": "document_library", "library_ids": [library.json()["id"]]}],
                    completion_args={"temperature": 0, "max_tokens": 8})
    before = _requests(http)
    answer = http.post("/v1/agents/completions", json={"agent_id": agent.id, "messages": ASK, "tool_choice": "none"})
    body = _ok(answer, None)
    validate(body, "ChatCompletionResponse")
    assert body["model"] == DEFAULT_MODEL and body["choices"][0]["message"]["content"]
    assert 0 < body["usage"]["completion_tokens"] <= 8 and _requests(http) == before + 1
    events = list(sdk.agents.stream(agent_id=agent.id, messages=ASK, tool_choice="none"))
    text = "".join(e.data.choices[0].delta.content or "" for e in events if e.data.choices)
    assert text == body["choices"][0]["message"]["content"]  # temperature 0: the same answer
    assert events[-1].data.choices[0].finish_reason == "stop" and events[-1].data.usage.total_tokens > 0
    unreadable = _create(sdk, "stranger", tools=[{"type": "document_library",
                                                  "library_ids": ["3f1c1a9e-0000-4000-8000-000000000000"]}])
    _error(http.post("/v1/agents/completions", json={"agent_id": unreadable.id, "messages": ASK}),
           400, "tools.0.library_ids")
    # What the loop does not take is refused before anything runs.
    _error(http.post("/v1/agents/completions", json={"agent_id": agent.id, "messages": ASK, "tools": [WEATHER]}),
           400, "tools")
    _error(http.post("/v1/agents/completions", json={"agent_id": agent.id, "messages": [
        {"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}]}), 400, "messages.0.role")
    _error(http.post("/v1/agents/completions", json={"agent_id": agent.id, "messages": [
        {"role": "user", "content": "hi"}, {"role": "tool", "tool_call_id": "nope", "content": "42"}]}), 400)
    assert _requests(http) == before + 2  # none of the refused ones reached the model
