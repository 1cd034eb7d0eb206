"""MCP connectors: the client, the tools, the admin routes and conversations against a real MCP server.

The server is tests/mcp_servers/inventory_server.py, a real MCP server (the `mcp` package's
MCPServer) run as a subprocess over stdio, and once over streamable HTTP. Nothing is mocked. The
live tests use the session's shared platform server and the mistralai SDK.
The unit tests share one event loop and one McpTools (so one server process for most of them:
starting one costs 1.5-2 s); the ones that break the server (timeout, crash) use their own
connector, so their restarts do not touch the others.
"""

import asyncio
import json
import os
import subprocess
import sys
import time
import uuid
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from mistralai.client import Mistral

from plateforme.agent_tools.base import ToolContext, ToolSpecError
from plateforme.agents.errors import BadInput
from plateforme.connectors.mcp_config import check_timeout, parse_config, placeholders, resolve
from plateforme.connectors.mcp_config import McpConfigError
from plateforme.connectors.mcp_tools import McpTools, function_name
from plateforme.connectors.store import ConnectorRecord
from plateforme.settings import Settings
from plateforme.tenancy.principal import DEV_PRINCIPAL
from server_process import DEFAULT_MODEL, free_port
from spec_schema import validate

SERVER = str(Path(__file__).parent / "mcp_servers" / "inventory_server.py")
STDIO = {"transport": "stdio", "command": sys.executable, "args": [SERVER], "env": {"SHOP_NAME": "${F_MCP_SHOP}"},
         "requires_confirmation": ["delete_item"]}


def _connector(name: str = "shop", **config) -> ConnectorRecord:
    now = datetime.now(UTC)
    return ConnectorRecord(str(uuid.uuid4()), DEV_PRINCIPAL.workspace_id, name, "mcp", None, {**STDIO, **config},
                           now, now)


def _context(seconds: float = 60) -> ToolContext:
    return ToolContext(DEV_PRINCIPAL, "conv", None, "m", "call_1", time.monotonic() + seconds)


@pytest.fixture(scope="module")
def run():
    """One event loop for the module: sessions opened by one test are reused by the next."""
    os.environ["F_MCP_SHOP"] = "Fruits & Co"
    with asyncio.Runner() as runner:
        yield runner.run
    os.environ.pop("F_MCP_SHOP", None)
    os.environ.pop("F_MCP_TOKEN", None)


@pytest.fixture(scope="module")
def mcp(run):
    tools = McpTools(Settings(mcp_timeout_s=20))
    yield tools
    run(tools.close())


@pytest.fixture(scope="module")
def shop():
    return _connector(timeout_s=2)


def _by_short_name(tools) -> dict:
    return {t.entry_name.split(".", 1)[1]: t for t in tools}


def test_the_servers_tools_become_platform_tools(run, mcp, shop):
    tools = run(mcp.tools(DEV_PRINCIPAL, shop, {"type": "connector", "connector_id": "shop",
                                                "tool_configuration": {"exclude": ["crash"]}}, "tools.0"))
    named = _by_short_name(tools)
    assert set(named) == {"stock_level", "stock_count", "add", "delete_item", "shop_name", "slow", "freeze", "fail", "restock"}
    add = named["add"]
    assert (add.name, add.entry_name, add.description) == ("shop_add", "shop.add", "Add two integers.")
    assert add.parameters["required"] == ["a", "b"] and add.parameters["properties"]["a"]["type"] == "integer"
    assert [t.entry_name for t in tools if t.requires_confirmation] == ["shop.delete_item"]  # the admin's list
    # The entry's own tool_configuration: include narrows, requires_confirmation adds.
    only = run(mcp.tools(DEV_PRINCIPAL, shop, {"type": "connector", "connector_id": "shop", "tool_configuration": {
        "include": ["add", "shop.delete_item"], "requires_confirmation": ["shop_add"]}}, "tools.0"))
    assert {(t.name, t.requires_confirmation) for t in only} == {("shop_add", True), ("shop_delete_item", True)}


def test_a_call_answers_the_tools_text_with_its_structured_content(run, mcp, shop):
    named = _by_short_name(run(mcp.tools(DEV_PRINCIPAL, shop, {"connector_id": "shop"}, "tools.0")))
    added = run(named["add"].run({"a": 2, "b": 40}, _context()))
    assert (added.error, added.content) == (None, "42")
    assert added.info == {"connector": "shop", "tool": "add", "is_error": False, "structured_content": {"result": 42}}
    assert run(named["shop_name"].run({}, _context())).content == "Fruits & Co"  # ${F_MCP_SHOP}, resolved at start
    level = run(named["stock_level"].run({"item": "apple"}, _context()))
    assert level.info["structured_content"] is None and '"units": 12' in level.content


def test_a_tool_error_is_an_outcome_with_the_servers_reason(run, mcp, shop):
    named = _by_short_name(run(mcp.tools(DEV_PRINCIPAL, shop, {"connector_id": "shop"}, "tools.0")))
    failed = run(named["fail"].run({"reason": "the warehouse is closed"}, _context()))
    assert failed.error and "the warehouse is closed" in failed.error and "'fail'" in failed.error
    assert failed.content == failed.error == failed.info["error"] and failed.info["is_error"] is True
    unknown = run(named["stock_level"].run({"item": "kiwi"}, _context()))
    assert "unknown item 'kiwi'" in unknown.error
    wrong = run(named["add"].run({"a": "two"}, _context()))  # arguments the schema refuses
    assert wrong.error and "validation error" in wrong.error
    assert run(named["add"].run({"a": 1, "b": 1}, _context())).content == "2"  # the session goes on


def test_a_call_past_its_timeout_is_an_outcome_and_the_server_goes_on(run, mcp, shop):
    named = _by_short_name(run(mcp.tools(DEV_PRINCIPAL, shop, {"connector_id": "shop"}, "tools.0")))
    assert run(named["delete_item"].run({"item": "plum"}, _context())).content == "deleted plum"
    started = time.monotonic()
    late = run(named["slow"].run({"seconds": 30}, _context()))
    assert time.monotonic() - started < 4
    assert "did not answer the call of tool 'slow' within 2.0 s" in late.error
    # Slow on one call, not hung: the same process serves the next (its state shows it: plum is gone).
    assert run(named["stock_count"].run({}, _context())).content == "2"
    # The conversation's own deadline bounds a call too.
    assert "no time left" in run(named["add"].run({"a": 1, "b": 2}, _context(seconds=-1))).error


def test_a_server_that_hangs_or_dies_is_an_outcome_and_is_replaced(run, mcp):
    flaky = _connector("flaky", timeout_s=1)
    named = _by_short_name(run(mcp.tools(DEV_PRINCIPAL, flaky, {"connector_id": "flaky"}, "tools.0")))
    assert run(named["delete_item"].run({"item": "pear"}, _context())).content == "deleted pear"
    frozen = run(named["freeze"].run({"seconds": 30}, _context()))
    assert "did not answer the call of tool 'freeze' within 1.0 s" in frozen.error
    # The hung server fails the ping before the next call: a fresh process answers (pear is back).
    assert run(named["stock_count"].run({}, _context())).content == "3"
    dead = run(named["crash"].run({}, _context()))
    assert "closed the connection during the call of tool 'crash'" in dead.error
    assert run(named["add"].run({"a": 1, "b": 2}, _context())).content == "3"  # and again after a crash


def _spec_error(run, mcp, connector) -> ToolSpecError:
    with pytest.raises(ToolSpecError) as raised:
        run(mcp.tools(DEV_PRINCIPAL, connector, {"connector_id": connector.name}, "tools.2"))
    assert raised.value.param == "tools.2.connector_id"
    return raised.value


def test_a_server_that_cannot_start_is_a_502_naming_the_cause(run, mcp):
    exits = _spec_error(run, mcp, _connector("broken", args=["-c", "import sys; sys.exit('no database configured')"]))
    assert exits.status == 502 and "did not start" in str(exits) and "no database configured" in str(exits)
    missing = _spec_error(run, mcp, _connector("nocmd", command="/nonexistent/mcp-server", args=[]))
    assert missing.status == 502 and "command was not found" in str(missing)
    unset = _spec_error(run, mcp, _connector("noenv", env={"TOKEN": "${F_MCP_UNSET_VARIABLE}"}))
    assert "F_MCP_UNSET_VARIABLE" in str(unset) and "where `plateforme serve` runs" in str(unset)
    started = time.monotonic()  # a server's start is bounded by the platform's mcp_timeout_s
    impatient = McpTools(Settings(mcp_timeout_s=1))
    silent = _spec_error(run, impatient, _connector("silent", args=["-c", "import time; time.sleep(60)"]))
    assert time.monotonic() - started < 4 and "did not complete the MCP handshake within 1.0 s" in str(silent)
    run(impatient.close())
    bad = _spec_error(run, mcp, replace(_connector("badconfig"), config={"transport": "carrier pigeon"}))
    assert bad.status == 400
    with pytest.raises(ToolSpecError) as raised:  # credentials come from the platform's environment only
        run(mcp.tools(DEV_PRINCIPAL, _connector("x"), {"connector_id": "x", "authorization": {
            "type": "api-key", "value": "k"}}, "tools.1"))
    assert raised.value.param == "tools.1.authorization"


def test_streamable_http_with_a_header_from_the_environment(run, mcp):
    port = free_port()
    proc = subprocess.Popen([sys.executable, SERVER, "--http", str(port)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                httpx.get(f"http://127.0.0.1:{port}/mcp", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        os.environ["F_MCP_TOKEN"] = "sesame"
        remote = replace(_connector("remote"), config={"transport": "streamable_http",
                                                       "url": f"http://127.0.0.1:{port}/mcp",
                                                       "headers": {"Authorization": "Bearer ${F_MCP_TOKEN}"}})
        named = _by_short_name(run(mcp.tools(DEV_PRINCIPAL, remote, {"connector_id": "remote"}, "tools.0")))
        assert run(named["add"].run({"a": 20, "b": 22}, _context())).content == "42"
    finally:
        proc.terminate()
        proc.wait(10)
    gone = run(named["add"].run({"a": 1, "b": 1}, _context()))  # the server stopped: an outcome, not a hang
    assert gone.error and "remote" in gone.error


def test_configurations_are_checked_field_by_field():
    def error(config: dict) -> BadInput:
        with pytest.raises(BadInput) as raised:
            parse_config(config)
        return raised.value

    assert error({"transport": "stdio", "command": "x", "cwd": "relative/dir"}).param == "config.stdio.cwd"
    assert error({"transport": "streamable_http", "url": "ftp://x"}).param == "config.streamable_http.url"
    assert error({"transport": "stdio", "command": "x", "shell": True}).param == "config.stdio.shell"
    assert error({"transport": "ws"}).param == "config"
    with pytest.raises(BadInput, match="PLATEFORME_MCP_TIMEOUT_S"):
        check_timeout(parse_config({"transport": "stdio", "command": "x", "timeout_s": 60}), 30)
    config = parse_config({"transport": "streamable_http", "url": "https://${HOST}/mcp",
                           "headers": {"A": "${TOKEN}", "B": "x-${HOST}"}})
    assert placeholders(config) == ["HOST", "TOKEN"]
    assert resolve("Bearer ${TOKEN}", "headers.A", {"TOKEN": "t"}) == "Bearer t"
    with pytest.raises(McpConfigError, match="headers.A names the environment variable TOKEN"):
        resolve("Bearer ${TOKEN}", "headers.A", {})


def test_function_names_are_sanitised_bounded_and_unique():
    assert function_name("shop", "get.forecast", set()) == "shop_get_forecast"
    long = function_name("warehouse-eu", "x" * 80, set())
    assert len(long) == 64 and long.startswith("warehouse-eu_xxx")
    clash = function_name("shop", "get_forecast", {"shop_get_forecast"})
    assert clash != "shop_get_forecast" and clash.startswith("shop_get_forecast_")


# ---- Live: the admin routes and the SDK against the session's shared server (no-auth: an admin) ----

WORKSPACE = DEV_PRINCIPAL.workspace_id  # the --no-auth workspace


def _servers_url(server, workspace: str = WORKSPACE) -> str:
    return f"{server.url}/v1/admin/workspaces/{workspace}/mcp-servers"


@pytest.fixture(scope="module")
def registered(server, tmp_path_factory):
    """The test MCP server registered for the workspace; `restock` and `delete_item` need confirmation."""
    log = tmp_path_factory.mktemp("mcp") / "restock.log"
    body = {"name": f"shop-{uuid.uuid4().hex[:6]}", "description": "the fruit shop", "transport": "stdio",
            "command": sys.executable, "args": [SERVER], "env": {"RESTOCK_LOG": str(log)},
            "requires_confirmation": ["restock", "delete_item"], "timeout_s": 10}
    answer = httpx.post(_servers_url(server), json=body, timeout=60)
    assert answer.status_code == 200, answer.text
    yield {**answer.json(), "restock_log": log}
    httpx.delete(f"{_servers_url(server)}/{body['name']}", timeout=30)  # its server process stops with it


def _error(response: httpx.Response, status: int) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) >= {"object", "message", "type", "param", "code"} and body["object"] == "error"
    return body


def test_admin_registers_lists_and_removes_mcp_servers(server, registered):
    name = registered["name"]
    assert registered["object"] == "mcp_server" and registered["transport"] == "stdio"
    assert registered["env"] == {"RESTOCK_LOG": str(registered["restock_log"])}
    tools = {t["name"]: t for t in registered["tools"]}
    assert tools["restock"] == {**tools["restock"], "function_name": f"{name}_restock",
                                "entry_name": f"{name}.restock", "requires_confirmation": True}
    assert not tools["add"]["requires_confirmation"] and tools["add"]["input_schema"]["required"] == ["a", "b"]
    listed = httpx.get(_servers_url(server)).json()
    assert listed["object"] == "list" and name in [s["name"] for s in listed["data"]]
    assert httpx.get(f"{_servers_url(server)}/{registered['id']}").json()["name"] == name  # by id too
    live = httpx.get(f"{_servers_url(server)}/{name}/tools", timeout=60).json()
    assert [t["name"] for t in live["data"]] == [t["name"] for t in registered["tools"]]

    def post(**changes) -> httpx.Response:
        body = {"name": f"x-{uuid.uuid4().hex[:6]}", "transport": "stdio", "command": sys.executable,
                "args": [SERVER], **changes}
        return httpx.post(_servers_url(server), json=body, timeout=60)

    assert "already has a connector" in _error(post(name=name), 409)["message"]
    broken = _error(post(args=["-c", "import sys; sys.exit('missing licence file')"]), 400)
    assert broken["param"] == "command" and "missing licence file" in broken["message"]
    assert _error(post(requires_confirmation=["launch_rocket"]), 400)["param"] == "requires_confirmation"
    assert "PLATEFORME_MCP_TIMEOUT_S" in _error(post(timeout_s=3600), 400)["message"]
    assert _error(post(transport="smoke-signals"), 422)
    assert _error(httpx.get(_servers_url(server, "no-such-workspace")), 404)
    # Removed: gone from the list, 404 after, its name free again.
    extra = post(name=f"tmp-{uuid.uuid4().hex[:6]}").json()
    gone = httpx.delete(f"{_servers_url(server)}/{extra['name']}", timeout=30).json()
    assert gone == {"id": extra["id"], "object": "mcp_server", "name": extra["name"], "deleted": True}
    assert _error(httpx.get(f"{_servers_url(server)}/{extra['name']}"), 404)
    assert _error(httpx.get(f"{_servers_url(server)}/{extra['name']}/tools"), 404)
    audit = httpx.get(f"{server.url}/v1/admin/audit", params={"workspace_id": WORKSPACE, "limit": 1000}).json()
    actions = {(e["action"], e["resource_id"]) for e in audit["data"]}
    assert {("mcp_server.create", extra["id"]), ("mcp_server.delete", extra["id"])} <= actions


def _connector_tool(name: str, *tools: str) -> dict:
    return {"type": "connector", "connector_id": name, "tool_configuration": {"include": list(tools)}}


def _restocks(registered) -> int:
    log = registered["restock_log"]
    return len(log.read_text().splitlines()) if log.exists() else 0


def _agent(client: Mistral, name: str, tool: str, max_tokens: int):
    """An agent offered one tool of the connector, forced to call it (the 135M model would not choose to)
    on the first step of a response to a message; `max_tokens` bounds every step (each costs seconds here)."""
    return client.beta.agents.create(model=DEFAULT_MODEL, name=f"{name} {tool}", instructions="Use the tools.",
                                     tools=[_connector_tool(name, tool)],
                                     completion_args={"tool_choice": "any", "max_tokens": max_tokens,
                                                      "random_seed": 7})  # the same steps every run


def test_an_agent_calls_an_mcp_tool_through_the_sdk(server, registered):
    """Streamed, and left as soon as the tool has run: after its result the tiny model would call it
    again and again until the loop's bounds (each step costs seconds here); leaving stops the response."""
    name = registered["name"]
    client = Mistral(api_key="unused", server_url=server.url)
    agent = _agent(client, name, "add", 160)
    events = []
    with client.beta.conversations.start_stream(agent_id=agent.id, inputs="What is 2 plus 3?") as stream:
        for event in stream:
            events.append((event.event, event.data.model_dump(mode="json", by_alias=True, exclude_none=True)))
            if event.event == "tool.execution.done" or event.event == "conversation.response.error":
                break
    kinds = [kind for kind, _ in events]
    assert kinds[0] == "conversation.response.started" and "tool.execution.done" in kinds, events
    for kind, data in events:
        validate({"event": kind, "data": data}, "ConversationEvents")
    started, done = dict(events)["tool.execution.started"], dict(events)["tool.execution.done"]
    assert started["name"] == done["name"] == f"{name}.add" and done["id"] == started["id"]
    info = done["info"]
    assert (info["connector"], info["tool"]) == (name, "add")
    # What the server answered: the sum, or its own reason for refusing the model's arguments.
    arguments = json.loads(started["arguments"])
    assert info["is_error"] or info["structured_content"]["result"] == arguments["a"] + arguments["b"]
    conversation = events[0][1]["conversation_id"]
    kept = httpx.get(f"{server.url}/v1/conversations/{conversation}/history", timeout=30).json()["entries"]
    assert [e["info"] for e in kept if e["type"] == "tool.execution"][0]["content"] == info["content"]


def test_a_confirmation_round_runs_the_tool_on_allow_only(server, registered):
    name = registered["name"]
    client = Mistral(api_key="unused", server_url=server.url)
    # 160 as for add: the forced call was once cut at 64 tokens (a 400 naming max_tokens). Even a
    # call without arguments may take that many: up to two calls, and up to 21 characters of
    # whitespace wherever llama.cpp's JSON grammar allows a space.
    agent = _agent(client, name, "restock", 160)
    before = _restocks(registered)

    def pending(ran_before: int) -> tuple[str, str]:
        started = client.beta.conversations.start(agent_id=agent.id, inputs="We are out of apples.")
        calls = [e for e in started.outputs if e.type == "function.call"]
        assert calls and calls[-1].name == f"{name}_restock" and calls[-1].confirmation_status == "pending"
        assert _restocks(registered) == ran_before  # paused: nothing ran
        return started.conversation_id, calls[-1].tool_call_id

    conversation, call = pending(before)
    # Allowed: streamed, and left once the tool has run (the model's step after it is not needed here).
    with client.beta.conversations.append_stream(conversation_id=conversation, tool_confirmations=[
            {"tool_call_id": call, "confirmation": "allow"}]) as stream:
        ran = next(e.data for e in stream if e.event in ("tool.execution.done", "conversation.response.error"))
    assert (ran.type, ran.name) == ("tool.execution.done", f"{name}.restock")
    assert ran.info["is_error"] is False and ran.info["structured_content"] == {"result": "restock ordered"}
    assert _restocks(registered) == before + 1

    conversation, call = pending(before + 1)
    denied = client.beta.conversations.append(conversation_id=conversation,
                                              tool_confirmations=[{"tool_call_id": call, "confirmation": "deny"}])
    refusal = denied.outputs[0]
    assert (refusal.type, refusal.name, refusal.info["confirmation"]) == ("tool.execution", f"{name}.restock", "denied")
    assert _restocks(registered) == before + 1  # denied: the server was never called
    history = httpx.get(f"{server.url}/v1/conversations/{conversation}/history", timeout=30).json()
    validate(history, "ConversationHistory")


def test_another_workspaces_mcp_server_is_out_of_reach(server):
    other = httpx.post(f"{server.url}/v1/admin/workspaces", json={"name": f"mcp-{uuid.uuid4().hex[:6]}"}).json()
    theirs = f"theirs-{uuid.uuid4().hex[:6]}"
    body = {"name": theirs, "transport": "stdio", "command": sys.executable, "args": [SERVER]}
    assert httpx.post(_servers_url(server, other["id"]), json=body, timeout=60).status_code == 200
    assert theirs not in [s["name"] for s in httpx.get(_servers_url(server)).json()["data"]]
    assert _error(httpx.get(f"{_servers_url(server)}/{theirs}"), 404)
    assert _error(httpx.get(f"{_servers_url(server)}/{theirs}/tools", timeout=60), 404)
    assert _error(httpx.delete(f"{_servers_url(server)}/{theirs}"), 404)
    assert httpx.get(f"{_servers_url(server, other['id'])}/{theirs}").json()["name"] == theirs  # still there
    refused = httpx.post(f"{server.url}/v1/conversations", timeout=60, json={
        "model": DEFAULT_MODEL, "inputs": "hi", "tools": [_connector_tool(theirs, "add")]})
    assert _error(refused, 400)["param"] == "tools.0.connector_id"


def test_the_admin_cli_registers_lists_and_removes_mcp_servers(server):
    name = f"cli-{uuid.uuid4().hex[:6]}"
    with pytest.raises(RuntimeError, match="the server has no tool 'launch_rocket'"):
        server.admin("mcp", "add", "--workspace", WORKSPACE, "--name", name, "--command", sys.executable,
                     f"--arg={SERVER}", "--confirm", "launch_rocket")
    added = server.admin("mcp", "add", "--workspace", WORKSPACE, "--name", name, "--command", sys.executable,
                         f"--arg={SERVER}", "--env", "SHOP_NAME=${PLATEFORME_DATA_DIR}", "--confirm", "restock")
    stored = httpx.get(f"{_servers_url(server)}/{name}").json()
    assert stored["id"] == added.splitlines()[-1]
    # Stored as given: the placeholder, not the value it had when the server was tried.
    assert (stored["env"], stored["requires_confirmation"]) == ({"SHOP_NAME": "${PLATEFORME_DATA_DIR}"}, ["restock"])
    assert name in server.admin("mcp", "list", "--workspace", WORKSPACE)
    assert server.admin("mcp", "remove", "--workspace", WORKSPACE, name) == f"removed {name}"
    assert _error(httpx.get(f"{_servers_url(server)}/{name}"), 404)
