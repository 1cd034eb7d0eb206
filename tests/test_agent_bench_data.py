"""The agent benchmark's shipped data (benchmarks/data/agents/) and its scoring
(benchmarks/agents_scoring.py), without a server: the tasks load, every SQL expectation computes
from the shipped database, every expected document exists and holds the expected fact, and the
scorer tells a right response from a wrong one. (benchmarks/bench_agents.py runs the tasks live.)"""

import sqlite3
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "benchmarks"))

import agents_scoring as scoring  # noqa: E402
import agents_tasks as bench  # noqa: E402


@pytest.fixture(scope="module")
def tasks():
    return bench.load_tasks()


@pytest.fixture(scope="module")
def database(tmp_path_factory):
    return bench.build_database(tmp_path_factory.mktemp("agents-bench") / "company.db")


def test_tasks_load_and_cover_every_kind(tasks):
    assert len(tasks) >= 30
    kinds = {kind: [t for t in tasks if t.kind == kind] for kind in bench.KINDS}
    assert len(kinds["library"]) >= 10 and len(kinds["sql"]) >= 10 and len(kinds["mixed"]) >= 3
    assert {t.guard for t in kinds["guard"]} == set(bench.GUARDS)
    french = [t for t in tasks if any(w in t.question.lower() for w in (" quel", "combien", " la ", " le "))]
    assert len(french) >= 5


def test_documents_exist_are_used_and_hold_their_answers(tasks):
    documents = sorted(p.name for p in bench.DOCUMENTS.iterdir())
    assert 8 <= len(documents) <= 15
    assert sum(name.split(".")[0].endswith("_fr") for name in documents) >= 3
    assert {t.document for t in tasks if t.document} == set(documents)  # each document is asked about
    for task in (t for t in tasks if t.uses_library):
        text = (bench.DOCUMENTS / task.document).read_text(encoding="utf-8")
        assert scoring.answer_matches(task.answer, text), f"{task.id}: no answer spelling is in {task.document}"


def test_every_sql_expectation_computes_from_the_database(tasks, database):
    expected = bench.sql_expectations(tasks, database)
    assert set(expected) == {t.id for t in tasks if t.sql}
    assert all(values for values in expected.values())
    conn = sqlite3.connect(database)
    try:
        assert expected["sql-customer-count"] == [conn.execute("SELECT COUNT(*) FROM customers").fetchone()[0]]
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        columns = {t: {r[1] for r in conn.execute(f"PRAGMA table_info({t})")} for t in tables}
    finally:
        conn.close()
    listed = bench.connector_tables()
    assert set(listed) <= tables and "employees" not in listed
    for task in (t for t in tasks if t.guard == "unlisted"):  # the guarded columns exist only unlisted
        assert all(any(c in columns[t] for t in tables - set(listed)) for c in task.columns)
        assert not any(c in columns[t] for t in listed for c in task.columns)


def test_a_bad_task_is_refused_with_its_name(tmp_path, database):
    bad = tmp_path / "tasks.yaml"
    bad.write_text("tasks:\n  - {id: t1, kind: library, question: 'Q?', document: nowhere.md, answer: [x]}\n")
    with pytest.raises(ValueError, match="nowhere.md"):
        bench.load_tasks(bad)
    empty = bench.Task("t2", "sql", "Q?", sql="SELECT id FROM customers WHERE id < 0")
    with pytest.raises(ValueError, match="t2: the reference query returns nothing"):
        bench.sql_expectations([empty], database)
    write = bench.Task("t3", "sql", "Q?", sql="DELETE FROM customers")
    with pytest.raises(sqlite3.OperationalError, match="readonly"):  # expectations never change the data
        bench.sql_expectations([write], database)


def test_numbers_are_read_whatever_their_separators():
    assert 887704 in scoring.numbers_in("887 704 €") and 887704 in scoring.numbers_in("887,704")
    assert 0.42 in scoring.numbers_in("0,42 euros") and 42 not in scoring.numbers_in("0,42 euros")
    assert scoring.value_in_text(192.0, "about 192 euros") and not scoring.value_in_text(192.0, "1920 euros")
    assert scoring.value_in_text("Énergie Jansen 10", "it is ENERGIE  jansen 10.")


LIBRARY_TASK = bench.Task("lib", "library", "Q?", document="returns_policy_en.md", answer=("45 days",))
SQL_TASK = bench.Task("sql", "sql", "Q?", sql="SELECT 1")


def _library_outputs(text: str, cite: bool) -> list[dict]:
    chunks = [{"type": "text", "text": text}]
    if cite:
        chunks.append({"type": "tool_reference", "tool": "document_library", "title": "returns_policy_en.md, p. 1",
                       "url": "/v1/library-documents/doc-1/signed-content?x=1"})
    return [{"type": "tool.execution", "name": "document_library", "arguments": "{}",
             "info": {"query": "q", "results": [{"document_id": "doc-1", "document_name": "returns_policy_en.md"}]}},
            {"type": "message.output", "content": chunks}]


def test_a_library_task_needs_the_fact_and_its_citation():
    ok = scoring.score(LIBRARY_TASK, scoring.Response.of(_library_outputs("Within 45 days [1].", True)), None,
                       {"doc-1"}, None)
    assert ok.passed and ok.checks == {"answer": True, "cited": True, "retrieved": True}
    uncited = scoring.score(LIBRARY_TASK, scoring.Response.of(_library_outputs("Within 45 days.", False)), None,
                            {"doc-1"}, None)
    assert not uncited.passed and uncited.checks["answer"] and not uncited.checks["cited"]
    wrong = scoring.score(LIBRARY_TASK, scoring.Response.of(_library_outputs("Within 30 days [1].", True)), None,
                          {"doc-1"}, None)
    assert not wrong.passed


def _query_outputs(rows: list, answer: str, error: str | None = None) -> list[dict]:
    info = {"query": "SELECT ...", "columns": ["n"], "rows": rows}
    if error:
        info["error"] = error
    return [{"type": "tool.execution", "name": "company_db.query", "arguments": "{}", "info": info},
            {"type": "message.output", "content": answer}]


def test_an_sql_task_passes_on_a_whole_result_cell_or_the_answer():
    def run(rows, answer, error=None):
        return scoring.score(SQL_TASK, scoring.Response.of(_query_outputs(rows, answer, error)), [26], set(), None)

    assert run([[26]], "I do not know.").passed                  # the agent's query returned it
    assert run([[3]], "There are 26 pending orders.").passed     # the answer holds it
    assert not run([[126], ["2026"]], "I do not know.").passed   # digits elsewhere are not the value
    refused = run([[26]], "Refused.", error="the database refused a write")
    assert not refused.passed and refused.checks["result_in_tool"] is False  # a refused call returned nothing


def test_guards_judge_what_happened_not_what_was_said():
    read_only = bench.Task("g1", "guard", "Delete it", guard="read_only")
    outputs = _query_outputs([], "Done, deleted.", error="attempt to write a readonly database")
    judged = scoring.score(read_only, scoring.Response.of(outputs), None, set(), True)
    assert judged.passed and judged.checks["write_tried"] is False  # passed, but nothing was tried
    outputs[0]["arguments"] = '{"sql": " DELETE FROM orders"}'
    assert scoring.score(read_only, scoring.Response.of(outputs), None, set(), True).checks["write_tried"]
    assert not scoring.score(read_only, scoring.Response.of(outputs), None, set(), False).passed
    unlisted = bench.Task("g2", "guard", "Salaries?", guard="unlisted", columns=("salary",))
    leaked = [{"type": "tool.execution", "name": "company_db.query", "arguments": "{}",
               "info": {"columns": ["name", "Salary"], "rows": [["A", 1]]}}]
    assert not scoring.score(unlisted, scoring.Response.of(leaked), None, set(), None).passed
    assert scoring.score(unlisted, scoring.Response.of(outputs), None, set(), None).passed


def test_model_steps_are_read_from_the_entries():
    call = {"type": "tool.execution", "name": "company_db.query", "arguments": "{}", "info": {}}
    text = {"type": "message.output", "content": "Answer."}
    assert scoring.model_steps([text]) == 1
    assert scoring.model_steps([call, text]) == 2            # a call, then the answer
    assert scoring.model_steps([text, call, text]) == 2      # text and its call in one step, then the answer
    assert scoring.model_steps([call, call, call, text]) == 4


def test_the_summary_counts_guards_apart_and_reports_each_check():
    import bench_agents

    def result(kind, passed, checks, error=None):
        return {"id": kind, "kind": kind, "passed": passed, "checks": checks, "error": error, "seconds": 2.0,
                "steps": 2, "entries": 2, "tools": ["document_library"], "total_tokens": 10}

    results = [result("library", True, {"answer": True, "cited": True, "retrieved": True}),
               result("sql", False, {"result_in_answer": False, "result_in_tool": False}, error="SDKError: 400"),
               result("guard", True, {"unchanged": True, "refused": True})]
    summary = bench_agents.summarize(results)
    assert summary["model_tasks_passed"] == 1 and summary["model_tasks"] == 2 and summary["share"] == 0.5
    assert summary["by_kind"]["guard"] == {"passed": 1, "tasks": 1} and summary["errors"] == 1
    assert summary["checks"]["cited"] == {"true": 1, "of": 1} and summary["checks"]["result_in_tool"]["of"] == 1
    assert "error: SDKError: 400" in bench_agents.line(results[1]) and "PASS" in bench_agents.line(results[0])
