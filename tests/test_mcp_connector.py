"""MCP connectors: the client, the tools and the admin routes against a real MCP server.

The server is tests/mcp_servers/inventory_server.py, a real MCP server (the `mcp` package's
MCPServer) run as a subprocess over stdio, and once over streamable HTTP. Nothing is mocked.
The unit tests share one event loop and one McpTools (so one server process for most of them:
starting one costs 1.5-2 s); the ones that break the server (timeout, crash) use their own
connector, so their restarts do not touch the others.
"""

import asyncio
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

from plateforme.agent_tools.base import ToolContext, ToolSpecError
from plateforme.agents.errors import BadInput
from plateforme.connectors.mcp_config import check_timeout, parse_config, placeholders, resolve
from plateforme.connectors.mcp_config import McpConfigError
from plateforme.connectors.mcp_tools import McpTools, function_name
from plateforme.connectors.store import ConnectorRecord
from plateforme.settings import Settings
from plateforme.tenancy.principal import DEV_PRINCIPAL
from server_process import free_port

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
    assert set(named) == {"stock_level", "stock_count", "add", "delete_item", "shop_name", "slow", "freeze", "fail"}
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
