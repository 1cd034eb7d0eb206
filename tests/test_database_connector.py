"""Database connectors: the shipped company database (benchmarks/data/agents/company.sql) read
through the connector's tools on SQLite and on PostgreSQL (a private server, the `postgres`
fixture), with read-only, the allowed tables and columns, the timeout and the row cap enforced by
the database itself; configuration checks; and, live on the shared server, an admin registering
the database, an agent answering through the SQL tool, a write refused, another workspace kept out.

No mocks: real SQLite files, a real PostgreSQL, the real tool objects the conversation loop calls.
"""

import asyncio
import json
import sqlite3
import sys
import time
import uuid
from pathlib import Path

import httpx
import psycopg
import pytest
from server_process import DEFAULT_MODEL
from spec_schema import validate, validate_response

from plateforme.agent_tools.base import ToolContext, ToolSpecError
from plateforme.agents.errors import BadInput
from plateforme.connectors.database_config import parse_database_config
from plateforme.connectors.database_reader import DatabaseReader
from plateforme.connectors.database_tools import DatabaseTools
from plateforme.connectors.store import ConnectorRecord
from plateforme.settings import Settings
from plateforme.tenancy.principal import DEV_PRINCIPAL

sys.path.insert(0, str(Path(__file__).parents[1] / "benchmarks" / "data" / "agents"))
import company_db  # noqa: E402

TABLES = {"customers": ["id", "name", "city", "country", "segment"], "products": "*", "orders": "*",
          "order_items": "*"}  # not employees (salaries), not customers.email
SETTINGS = Settings(database_row_cap=50, database_timeout_s=2.0)


@pytest.fixture(scope="module")
def sqlite_url(tmp_path_factory) -> str:
    return f"sqlite:///{company_db.build_sqlite(tmp_path_factory.mktemp('company') / 'company.db')}"


@pytest.fixture(scope="module")
def postgres_url(postgres) -> str:
    url = postgres.create_database(f"company_{uuid.uuid4().hex[:8]}")
    company_db.load_postgres(url)
    return url


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request) -> str:
    return request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "postgres_url")


def _connector(url: str, name: str = "company", **config) -> ConnectorRecord:
    stored = parse_database_config({"url": url, "tables": TABLES, **config}, SETTINGS).as_stored()
    now = __import__("datetime").datetime.now()
    return ConnectorRecord(str(uuid.uuid4()), DEV_PRINCIPAL.workspace_id, name, "database", "the company's orders",
                           stored, now, now)


def _tools(connector: ConnectorRecord, spec: dict | None = None) -> dict:
    tools = asyncio.run(DatabaseTools(SETTINGS).tools(DEV_PRINCIPAL, connector, spec or {}, "tools.0"))
    return {t.name: t for t in tools}


def _run(tool, args: dict, seconds: float = 60.0):
    context = ToolContext(DEV_PRINCIPAL, None, None, "m", "call_1", time.monotonic() + seconds)
    return asyncio.run(tool.run(args, context))


def _count(url: str, table: str) -> int:
    if url.startswith("sqlite:"):
        with sqlite3.connect(url[len("sqlite:///"):]) as conn:
            return conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
    with psycopg.connect(url) as conn:
        return conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


def test_query_answers_a_table_with_the_executed_query(url):
    tools = _tools(_connector(url))
    assert set(tools) == {"company_schema", "company_query"}
    assert tools["company_query"].entry_name == "company.query"
    sql = "SELECT status, count(*) AS n FROM orders GROUP BY status ORDER BY status"
    outcome = _run(tools["company_query"], {"sql": sql})
    assert outcome.error is None, outcome.error
    assert outcome.info["columns"] == ["status", "n"]
    assert outcome.info["rows"] == [["cancelled", 15], ["delivered", 144], ["pending", 26], ["shipped", 35]]
    assert outcome.info["row_count"] == 4 and outcome.info["truncated"] is False
    assert outcome.info["query"] == sql and outcome.info["elapsed_ms"] >= 0
    assert sql in outcome.content and "| status | n |" in outcome.content and "| delivered | 144 |" in outcome.content
    # Whole euros: the same exact sum on both databases.
    total = _run(tools["company_query"], {"sql": "SELECT sum(quantity * unit_price) FROM order_items"})
    assert total.info["rows"] == [[1370175]]


def test_schema_lists_only_the_allowed_tables_and_columns(url):
    outcome = _run(_tools(_connector(url))["company_schema"], {})
    assert outcome.error is None
    assert set(outcome.info["tables"]) == set(TABLES)
    assert [c["name"] for c in outcome.info["tables"]["customers"]] == TABLES["customers"]
    assert "email" not in outcome.content and "employees" not in outcome.content and "salary" not in outcome.content
    assert "order_items(id " in outcome.content


@pytest.mark.parametrize("sql", ["DELETE FROM orders", "UPDATE orders SET status = 'cancelled'",
                                 "INSERT INTO products (id, name, category, unit_price, in_stock) "
                                 "VALUES (999, 'x', 'x', 1, 1)"])
def test_a_write_is_refused_by_the_database(url, sql):
    before = _count(url, "orders"), _count(url, "products")
    outcome = _run(_tools(_connector(url))["company_query"], {"sql": sql})
    assert outcome.error is not None and outcome.error in outcome.content
    # The database's own refusal: SQLite's read-only file, PostgreSQL's read-only transaction.
    assert ("readonly database" in outcome.error) if url.startswith("sqlite:") else \
        ("read-only transaction" in outcome.error)
    assert (_count(url, "orders"), _count(url, "products")) == before


def test_statements_that_could_lift_read_only_are_refused(url):
    query = _tools(_connector(url))["company_query"]
    attempts = (["PRAGMA query_only = 0", "ATTACH DATABASE '/tmp/other.db' AS other",
                 "SELECT 1; DELETE FROM orders"] if url.startswith("sqlite:") else
                ["SET TRANSACTION READ WRITE", "COMMIT", "SELECT 1; DELETE FROM orders",
                 "WITH gone AS (DELETE FROM orders RETURNING id) SELECT count(*) FROM gone"])
    for sql in attempts:
        outcome = _run(query, {"sql": sql})
        assert outcome.error, sql
    assert _count(url, "orders") == 220


@pytest.mark.parametrize("sql,named", [
    ("SELECT count(*) FROM employees", "employees"),
    ("SELECT name, salary FROM employees ORDER BY salary DESC", "employees"),
    ("SELECT (SELECT max(salary) FROM employees) AS top", "employees"),
    ("SELECT email FROM customers", "email"),
    ("SELECT * FROM customers", "email"),
    ("SELECT name FROM customers WHERE email LIKE 'contact1@%'", "email"),
    ("WITH c AS (SELECT * FROM customers) SELECT * FROM c", "email"),
    ("SELECT c.name FROM customers c JOIN orders o ON o.customer_id = c.id WHERE c.email LIKE 'a%'", "email"),
    ("SELECT max(email) FROM customers", "email"),
    ("SELECT id FROM customers ORDER BY email LIMIT 3", "email"),
    ("SELECT * FROM customers UNION ALL SELECT * FROM customers", "email"),
    ("WITH c AS MATERIALIZED (SELECT * FROM customers) SELECT a.id, b.email FROM c a JOIN c b ON a.id = b.id", "email"),
    ("SELECT id FROM customers c WHERE EXISTS (SELECT 1 FROM customers d WHERE d.email = c.name)", "email"),
    ("SELECT o.id FROM orders o JOIN customers c ON c.email = o.status", "email"),
])
def test_unlisted_tables_and_columns_are_refused(url, sql, named):
    outcome = _run(_tools(_connector(url))["company_query"], {"sql": sql})
    assert outcome.error is not None and named in outcome.error, outcome.error
    assert "not one this connector may read" in outcome.error or "are not ones" in outcome.error


def test_allowed_queries_over_restricted_tables_still_run(url):
    query = _tools(_connector(url))["company_query"]
    for sql in ["SELECT count(*) FROM customers", "SELECT city, count(*) FROM customers GROUP BY city",
                "WITH big AS (SELECT customer_id, count(*) AS n FROM orders GROUP BY customer_id) "
                "SELECT c.name, big.n FROM big JOIN customers c ON c.id = big.customer_id ORDER BY big.n DESC LIMIT 3"]:
        outcome = _run(query, {"sql": sql})
        assert outcome.error is None, (sql, outcome.error)


def test_reads_of_the_catalog_are_refused(url):
    sql = "SELECT name FROM sqlite_master" if url.startswith("sqlite:") else \
        "SELECT query_to_xml('SELECT * FROM employees', true, true, '')"
    outcome = _run(_tools(_connector(url))["company_query"], {"sql": sql})
    assert outcome.error and "employees" not in outcome.content.split("refused", 1)[-1].split("(")[0]
    if not url.startswith("sqlite:"):
        assert _run(_tools(_connector(url))["company_query"], {"sql": "SELECT * FROM pg_tables"}).error


def test_a_query_past_its_timeout_is_stopped(url):
    query = _tools(_connector(url, timeout_s=0.5))["company_query"]
    sql = ("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) SELECT count(*) FROM n"
           if url.startswith("sqlite:") else "SELECT pg_sleep(5)")
    started = time.monotonic()
    outcome = _run(query, {"sql": sql})
    assert time.monotonic() - started < 3
    assert outcome.error and "timeout" in outcome.error
    # The loop's wall-time bound is a deadline too: with 0.2 s left, the query gets 0.2 s.
    started = time.monotonic()
    outcome = _run(query, {"sql": sql}, seconds=0.2)
    assert outcome.error and time.monotonic() - started < 2


def test_row_cap_truncates(url):
    query = _tools(_connector(url, row_cap=7))["company_query"]
    outcome = _run(query, {"sql": "SELECT id FROM orders ORDER BY id"})
    assert outcome.info["rows"] == [[i] for i in range(1, 8)]
    assert outcome.info["truncated"] is True and "truncated" in outcome.content
    exact = _run(query, {"sql": "SELECT id FROM orders ORDER BY id LIMIT 7"})
    assert exact.info["truncated"] is False and exact.info["row_count"] == 7


def test_bad_sql_is_an_outcome_not_a_failure(url):
    query = _tools(_connector(url))["company_query"]
    for args in ({"sql": "SELEC 1"}, {"sql": ""}, {}):
        outcome = _run(query, args)
        assert outcome.error and outcome.info.get("error") == outcome.error


def test_queries_run_off_the_event_loop(url):
    reader = DatabaseReader(parse_database_config({"url": url, "tables": TABLES, "timeout_s": 1}, SETTINGS))
    sql = ("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) SELECT count(*) FROM n"
           if url.startswith("sqlite:") else "SELECT pg_sleep(0.6)")

    async def main() -> int:
        ticks = 0

        async def ticker():
            nonlocal ticks
            while True:
                await asyncio.sleep(0.02)
                ticks += 1

        task = asyncio.create_task(ticker())
        try:
            await reader.query(sql)
        except Exception:
            pass
        task.cancel()
        return ticks

    assert asyncio.run(main()) >= 10


def test_tool_configuration_include(sqlite_url):
    tools = _tools(_connector(sqlite_url), {"tool_configuration": {"include": ["query"]}})
    assert list(tools) == ["company_query"]


def test_credentials_come_from_the_environment(postgres_url, monkeypatch):
    user_url = postgres_url.replace("postgresql://postgres@", "postgresql://postgres:${E_TEST_DB_PASSWORD}@")
    connector = _connector(user_url)
    assert connector.config["url"] == user_url  # stored with its placeholder, never resolved
    monkeypatch.delenv("E_TEST_DB_PASSWORD", raising=False)
    outcome = _run(_tools(connector)["company_query"], {"sql": "SELECT count(*) FROM orders"})
    assert outcome.error and "E_TEST_DB_PASSWORD" in outcome.error and "not set" in outcome.error
    monkeypatch.setenv("E_TEST_DB_PASSWORD", "s3cret")
    outcome = _run(_tools(connector)["company_query"], {"sql": "SELECT count(*) FROM orders"})
    assert outcome.error is None and outcome.info["rows"] == [[220]]
    assert "s3cret" not in str(outcome.info) and "s3cret" not in outcome.content


def test_a_role_granted_the_listed_tables_only_is_enforced_by_its_grants(postgres_url):
    role = f"reader_{uuid.uuid4().hex[:6]}"
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(f"CREATE ROLE {role} LOGIN")
        conn.execute(f"GRANT SELECT ON orders, order_items, products TO {role}")
        conn.execute(f"GRANT SELECT (id, name, city, country, segment) ON customers TO {role}")
    as_role = postgres_url.replace("postgresql://postgres@", f"postgresql://{role}@")
    config = parse_database_config({"url": as_role, "tables": TABLES}, SETTINGS)
    assert asyncio.run(DatabaseReader(config).check()) == []  # nothing more to warn about
    superuser = parse_database_config({"url": postgres_url, "tables": TABLES}, SETTINGS)
    warnings = asyncio.run(DatabaseReader(superuser).check())
    assert len(warnings) == 1 and "employees" in warnings[0]


def test_registration_checks_tables_and_columns_exist(url):
    def check(tables):
        return asyncio.run(DatabaseReader(parse_database_config({"url": url, "tables": tables}, SETTINGS)).check())

    with pytest.raises(BadInput) as missing:
        check({"orders": "*", "invoices": "*"})
    assert missing.value.param == "tables.invoices"
    with pytest.raises(BadInput) as column:
        check({"customers": ["id", "vat_number"]})
    assert column.value.param == "tables.customers" and "vat_number" in str(column.value)


def test_an_unreachable_database_is_a_400_naming_the_url(tmp_path):
    for url in (f"sqlite:///{tmp_path / 'absent.db'}", "postgresql://nobody@127.0.0.1:1/none"):
        config = parse_database_config({"url": url, "tables": {"t": "*"}}, SETTINGS)
        with pytest.raises(BadInput) as error:
            asyncio.run(DatabaseReader(config).check())
        assert error.value.param == "url"


@pytest.mark.parametrize("config,param", [
    ({"url": "postgresql://u:hunter2@h/db"}, "url"),
    ({"url": "sqlite:///relative.db"}, "url"),
    ({"url": "mysql://u@h/db"}, "url"),
    ({"tables": {}}, "tables"),
    ({"tables": {"orders; DROP TABLE x": "*"}}, "tables"),
    ({"tables": {"orders": []}}, "tables.orders"),
    ({"row_cap": 51}, "row_cap"),
    ({"row_cap": 0}, "row_cap"),
    ({"timeout_s": 2.5}, "timeout_s"),
])
def test_bad_configurations_are_400s_naming_the_field(config, param):
    body = {"url": "postgresql://reader:${PW}@db/sales", "tables": {"orders": "*"}, **config}
    with pytest.raises(BadInput) as error:
        parse_database_config(body, SETTINGS)
    assert error.value.param == param
    assert "hunter2" not in str(error.value)


def test_bounds_default_to_the_settings_and_shrink_with_them(sqlite_url):
    connector = _connector(sqlite_url, row_cap=40)
    assert connector.config["row_cap"] == 40 and connector.config["timeout_s"] == 2.0
    lower = Settings(database_row_cap=10, database_timeout_s=1.0)
    assert DatabaseTools(lower).reader(connector).config.row_cap == 10
    broken = ConnectorRecord(*list(connector.__dict__.values())[:5], {"url": "ftp://x", "tables": {}},
                             connector.created_at, connector.updated_at)
    with pytest.raises(ToolSpecError) as error:
        asyncio.run(DatabaseTools(SETTINGS).tools(DEV_PRINCIPAL, broken, {}, "tools.2"))
    assert error.value.param == "tools.2.connector_id"


# --- Live, through the admin API and the mistralai SDK, on the session's shared server -----------------------

LIVE_TABLES = {"customers": ["id", "name", "city", "country", "segment"], "orders": "*", "order_items": "*",
               "products": "*"}
# Room for the forced call(s) whole: a call cut by max_tokens is left as text, not run.
FORCED = {"tool_choice": "any", "temperature": 0, "max_tokens": 160}


@pytest.fixture(scope="module")
def live(server, tmp_path_factory):
    """The company database registered for the dev workspace, and an agent whose only tool is its query."""
    from mistralai.client import Mistral

    from plateforme.tenancy.principal import DEV_WORKSPACE

    path = company_db.build_sqlite(tmp_path_factory.mktemp("live-company") / "company.db")
    http = httpx.Client(base_url=server.url, headers=server.headers, timeout=600)
    client = Mistral(api_key=server.api_key or "no-auth", server_url=server.url, timeout_ms=600_000)
    name = f"company_{uuid.uuid4().hex[:6]}"
    registered = http.post(f"/v1/admin/workspaces/{DEV_WORKSPACE}/databases",
                           json={"name": name, "description": "orders, customers and products",
                                 "url": f"sqlite:///{path}", "tables": LIVE_TABLES, "row_cap": 20})
    assert registered.status_code == 200, registered.text
    agent = client.beta.agents.create(
        model=DEFAULT_MODEL, name="data assistant", completion_args=FORCED,
        instructions=f"You answer questions about the company's data by calling {name}_query with the SQL the "
                     "user gives, exactly as written.",
        # Each query waits for the client's confirmation: a response is then one model step at most
        # (the tiny model, left to choose, would call the tool step after step up to the loop's bounds).
        tools=[{"type": "connector", "connector_id": name,
                "tool_configuration": {"include": ["query"], "requires_confirmation": ["query"]}}])
    yield http, client, name, path, agent, registered.json()
    client.beta.agents.delete(agent_id=agent.id)
    http.delete(f"/v1/admin/workspaces/{DEV_WORKSPACE}/databases/{name}")
    http.close()


def _entries(response) -> list[dict]:
    return [o.model_dump(mode="json", by_alias=True, exclude_none=True) for o in response.outputs]


def _executions(entries: list[dict], name: str) -> list[dict]:
    runs = [e for e in entries if e["type"] == "tool.execution"]
    assert runs and all(e["name"] == f"{name}.query" for e in runs), [e["type"] for e in entries]
    return runs


def test_admin_registers_lists_and_removes_databases(live):
    from plateforme.tenancy.principal import DEV_WORKSPACE

    http, _, name, path, _, registered = live
    base = f"/v1/admin/workspaces/{DEV_WORKSPACE}/databases"
    assert registered["object"] == "database" and registered["name"] == name and registered["dialect"] == "sqlite"
    assert registered["tables"] == LIVE_TABLES and registered["row_cap"] == 20 and registered["warnings"] == []
    assert name in [d["name"] for d in http.get(base).json()["data"]]
    assert http.get(f"{base}/{registered['id']}").json()["name"] == name
    duplicate = http.post(base, json={"name": name, "url": f"sqlite:///{path}", "tables": {"orders": "*"}})
    assert duplicate.status_code == 409 and duplicate.json()["param"] == "name"
    for body, param in (({"tables": {"orders": "*", "invoices": "*"}}, "tables.invoices"),
                        ({"tables": {"customers": ["id", "vat"]}}, "tables.customers"),
                        ({"url": "postgresql://u:hunter2@127.0.0.1:1/db"}, "url"),
                        ({"url": "sqlite:////nonexistent/company.db"}, "url"),
                        ({"row_cap": 100000}, "row_cap")):
        bad = http.post(base, json={"name": "bad_db", "url": f"sqlite:///{path}", "tables": {"orders": "*"}, **body})
        assert bad.status_code == 400 and bad.json()["param"] == param, bad.text
        assert bad.json()["object"] == "error" and "hunter2" not in bad.text
    assert http.post(base, json={"name": "bad_db", "url": 3, "tables": {}}).status_code == 422
    assert http.get("/v1/admin/workspaces/no-such-workspace/databases").status_code == 404
    # Register, audit, remove.
    extra = http.post(base, json={"name": "scratch_db", "url": f"sqlite:///{path}", "tables": {"products": "*"}})
    assert extra.status_code == 200, extra.text
    removed = http.delete(f"{base}/scratch_db")
    assert removed.status_code == 200 and removed.json()["deleted"] is True
    assert http.get(f"{base}/scratch_db").status_code == 404 and http.delete(f"{base}/scratch_db").status_code == 404
    actions = [(e["action"], (e["detail"] or {}).get("name")) for e in http.get("/v1/admin/audit").json()["data"]]
    assert ("database.create", "scratch_db") in actions and ("database.delete", "scratch_db") in actions


def _check_runs(runs: list[dict], path: Path) -> list[str]:
    """Each query the model sent ran on the database or was refused by it; the SQL of each."""
    sent = []
    for run in runs:
        sql = json.loads(run["arguments"]).get("sql")
        assert run["info"]["query"] == sql, run["info"]  # the executed query is shown as sent
        sent.append(sql.strip() if isinstance(sql, str) else sql)
        if "error" in run["info"]:  # refused: the reason, and the model read it
            assert run["info"]["error"]
            if isinstance(sql, str) and sql.strip().split(" ", 1)[0].upper() in ("DELETE", "UPDATE", "INSERT"):
                assert "readonly database" in run["info"]["error"]
        else:  # what the database gives for that very SQL, at most the row cap
            with sqlite3.connect(path) as conn:
                expected = [list(r) for r in conn.execute(sql).fetchmany(20)]
            assert run["info"]["rows"] == expected and run["info"]["row_count"] == len(expected)
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT count(*) FROM orders").fetchone()[0] == 220  # nothing was written
    return sent


def _confirmed_round(live, question: str) -> tuple[str, list[str], list[dict]]:
    """A conversation with the agent: its pending query call, allowed, streamed to the end;
    (the SQL the model sent, the streamed event types, the stored entries)."""
    http, client, name, path, agent, _ = live
    started = client.beta.conversations.start(agent_id=agent.id, inputs=question)
    calls = [e for e in _entries(started) if e["type"] == "function.call"]
    assert calls and all(c["name"] == f"{name}_query" and c["confirmation_status"] == "pending" for c in calls), calls
    sql = json.loads(calls[-1]["arguments"]).get("sql")
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT count(*) FROM orders").fetchone()[0] == 220  # paused: nothing ran yet

    events, kind = [], None
    with http.stream("POST", f"/v1/conversations/{started.conversation_id}", json={
            "stream": True, "tool_confirmations": [{"tool_call_id": c["tool_call_id"], "confirmation": "allow"}
                                                   for c in calls]}) as streamed:  # each call of the step
        assert streamed.status_code == 200, streamed.read()
        for line in streamed.iter_lines():
            if line.startswith("event: "):
                kind = line[len("event: "):]
            elif line.startswith("data: "):
                data = json.loads(line[len("data: "):])
                validate({"event": kind, "data": data}, "ConversationEvents")
                events.append(data)
    types = [e["type"] for e in events]
    assert types[0] == "conversation.response.started" and types[-1] == "conversation.response.done", types
    done = [e for e in events if e["type"] == "tool.execution.done"]
    assert done and done[0]["name"] == f"{name}.query"
    # The conversation went on: the model's next step came after the tool's result.
    assert types.index("tool.execution.done") < max(i for i, t in enumerate(types)
                                                     if t in ("message.output.delta", "function.call.delta"))
    history = http.get(f"/v1/conversations/{started.conversation_id}/history")
    validate_response("/v1/conversations/{conversation_id}/history", "get", 200, history.json())
    runs = _executions(history.json()["entries"], name)
    assert len(runs) == len(calls) and json.loads(runs[-1]["arguments"]).get("sql") == sql
    _check_runs(runs, path)
    print(f"the model's query: {sql!r} -> {runs[-1]['info'].get('error') or runs[-1]['info']['rows']}")
    return sql, types, history.json()["entries"]


def test_an_agent_answers_a_question_through_the_sql_tool(live):
    """Once allowed, the model's query runs read-only and its rows are what the database gives for
    it (or, if the tiny model wrote bad SQL, the database's reason), then the model answers."""
    _confirmed_round(live, "How many orders are there? SELECT count(*) FROM orders")


def test_a_write_is_refused_by_the_database_and_the_conversation_goes_on(live):
    """Asked to delete, the model sends the DELETE (checked: the test is about it); allowed, it is
    refused by the read-only database with the reason, nothing is written, the model goes on."""
    sql, _, entries = _confirmed_round(live, "Delete the order 1: DELETE FROM orders WHERE id = 1")
    assert isinstance(sql, str) and sql.strip().upper().startswith("DELETE"), \
        f"the model did not send the write: {sql!r}"
    run = [e for e in entries if e["type"] == "tool.execution"][-1]  # the last call's (its sql above)
    assert "readonly database" in run["info"]["error"]
    assert entries[-1]["type"] in ("message.output", "function.call")


def test_another_workspace_cannot_use_the_connection(live):
    http, client, name, path, _, _ = live
    other = http.post("/v1/admin/workspaces", json={"name": f"other-{uuid.uuid4().hex[:6]}"}).json()["id"]
    theirs = f"theirs_{uuid.uuid4().hex[:6]}"
    assert http.post(f"/v1/admin/workspaces/{other}/databases",
                     json={"name": theirs, "url": f"sqlite:///{path}", "tables": {"orders": "*"}}).status_code == 200
    assert theirs not in [d["name"] for d in http.get("/v1/admin/workspaces/ws_default/databases").json()["data"]]
    assert name not in [d["name"] for d in http.get(f"/v1/admin/workspaces/{other}/databases").json()["data"]]
    # By name through another workspace's path: unknown, and deleting it there removes nothing.
    for response in (http.get(f"/v1/admin/workspaces/ws_default/databases/{theirs}"),
                     http.delete(f"/v1/admin/workspaces/ws_default/databases/{theirs}")):
        assert response.status_code == 404 and response.json()["object"] == "error", response.text
    assert http.get(f"/v1/admin/workspaces/{other}/databases/{theirs}").json()["name"] == theirs
    answer = http.post("/v1/conversations", json={"model": DEFAULT_MODEL, "inputs": "SELECT 1",
                                                  "tools": [{"type": "connector", "connector_id": theirs}]})
    assert answer.status_code == 400, answer.text
    assert answer.json()["param"] == "tools.0.connector_id" and theirs in answer.json()["message"]


def test_the_admin_cli_adds_lists_and_removes_databases(sqlite_url, tmp_path, monkeypatch, capsys):
    """`plateforme admin database ...`, in this process, on a fresh platform database."""
    from plateforme.cli import main

    monkeypatch.setenv("PLATEFORME_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("PLATEFORME_DATABASE_URL", raising=False)
    main(["admin", "workspaces", "create", "acme"])
    main(["admin", "database", "add", "--workspace", "acme", "--name", "company", "--url", sqlite_url,
          "--table", "orders", "--table", "customers:id,name,city", "--row-cap", "30"])
    main(["admin", "database", "list", "--workspace", "acme"])
    listed = capsys.readouterr().out.splitlines()
    assert listed[-1].split()[1:3] == ["company", sqlite_url] and "orders, customers" in listed[-1]
    with pytest.raises(SystemExit) as refused:
        main(["admin", "database", "add", "--workspace", "acme", "--name", "other", "--url", sqlite_url,
              "--table", "invoices"])
    assert "tables.invoices" in str(refused.value)
    main(["admin", "database", "remove", "--workspace", "acme", "company"])
    main(["admin", "audit", "--workspace", "acme"])
    out = capsys.readouterr().out
    assert "removed company" in out and "database.create" in out and "database.delete" in out
