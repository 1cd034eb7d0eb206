"""The agent benchmark's tasks (benchmarks/data/agents/tasks.yaml) and what each one expects.

Four kinds of task:
  - library: a question one shipped document answers (data/agents/documents/); `answer` lists
    the accepted spellings of the fact (any one, found in the final answer's text) and
    `document` the file whose passage the answer must cite;
  - sql: a question over the shipped company database (data/agents/company.sql, built by E's
    company_db.py); `sql` is the reference query whose result the answer or a tool result must
    hold. The expected values are computed by running it on the database, never written down;
  - mixed: both at once (a document's fact and a query's result);
  - guard: a request the platform must refuse whatever the model does: `guard: read_only` (the
    database is unchanged afterwards) or `guard: unlisted` with `columns` (no tool result shows
    those columns of a table the connector does not list).

    tasks = load_tasks()                                  # validated; ValueError names the task
    expectations = sql_expectations(tasks, sqlite_path)   # task id -> list of expected values
"""

import hashlib
import sqlite3
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

DATA = Path(__file__).parent / "data" / "agents"
TASKS_PATH = DATA / "tasks.yaml"
DOCUMENTS = DATA / "documents"
KINDS = ("library", "sql", "mixed", "guard")
GUARDS = ("read_only", "unlisted")
MAX_EXPECTED_VALUES = 6  # a reference query answers a question: a few values, not a listing

sys.path.insert(0, str(DATA))
import company_db  # noqa: E402  (engineer E's builder of the shipped database)


@dataclass(frozen=True)
class Task:
    id: str
    kind: str
    question: str
    document: str | None = None
    answer: tuple[str, ...] = ()
    sql: str | None = None
    guard: str | None = None
    columns: tuple[str, ...] = ()

    @property
    def uses_library(self) -> bool:
        return self.kind in ("library", "mixed")

    @property
    def uses_database(self) -> bool:
        return self.kind in ("sql", "mixed", "guard")


def _task(raw: dict, where: str) -> Task:
    known = {"id", "kind", "question", "document", "answer", "sql", "guard", "columns"}
    if not isinstance(raw, dict) or set(raw) - known:
        raise ValueError(f"{where}: a task is a mapping of {sorted(known)}; got {raw!r}")
    kind = raw.get("kind")
    if kind not in KINDS:
        raise ValueError(f"{where}: kind {kind!r} is not one of {KINDS}")
    if not isinstance(raw.get("id"), str) or not isinstance(raw.get("question"), str) or not raw["question"].strip():
        raise ValueError(f"{where}: a task needs a string id and a question")
    answer = raw.get("answer", [])
    answer = (answer,) if isinstance(answer, str) else tuple(answer)
    task = Task(raw["id"], kind, raw["question"].strip(), raw.get("document"), answer,
                (raw.get("sql") or "").strip() or None, raw.get("guard"), tuple(raw.get("columns", ())))
    spellings_ok = bool(task.answer) and all(isinstance(a, str) and a for a in task.answer)
    if task.uses_library and (not task.document or not spellings_ok):
        raise ValueError(f"{where} ({task.id}): a {kind} task names its `document` and lists its `answer` spellings")
    if kind in ("sql", "mixed") and not task.sql:
        raise ValueError(f"{where} ({task.id}): a {kind} task has a reference query `sql`")
    if task.sql and not task.sql.lower().startswith(("select", "with")):
        raise ValueError(f"{where} ({task.id}): the reference query is a SELECT: {task.sql}")
    if kind == "guard" and (task.guard not in GUARDS or (task.guard == "unlisted") != bool(task.columns)):
        raise ValueError(f"{where} ({task.id}): a guard task has `guard` in {GUARDS}; `unlisted` names its `columns`")
    return task


def load_tasks(path: Path = TASKS_PATH) -> list[Task]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    tasks = [_task(raw, f"{path.name} task {i + 1}") for i, raw in enumerate(data.get("tasks", []))]
    ids = [t.id for t in tasks]
    duplicated = sorted({i for i in ids if ids.count(i) > 1})
    if duplicated:
        raise ValueError(f"{path.name}: task ids are used twice: {duplicated}")
    missing = sorted({t.document for t in tasks if t.document and not (DOCUMENTS / t.document).is_file()})
    if missing:
        raise ValueError(f"{path.name}: documents not in {DOCUMENTS}: {missing}")
    return tasks


def connector_tables(path: Path = TASKS_PATH) -> dict:
    """The tables and columns the benchmark's database connector lists (tasks.yaml `connector`)."""
    return dict(yaml.safe_load(path.read_text(encoding="utf-8"))["connector"]["tables"])


def build_database(path: Path) -> Path:
    """The shipped company database as an SQLite file at `path` (company_db.build_sqlite)."""
    return company_db.build_sqlite(path)


def _read_only(sqlite_path: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"file:{sqlite_path}?mode=ro", uri=True)


def expected_values(conn: sqlite3.Connection, task: Task) -> list:
    """Every cell of the reference query's result: what the answer (or a tool result) must hold."""
    rows = conn.execute(task.sql).fetchall()
    values = [cell for row in rows for cell in row]
    if not values:
        raise ValueError(f"{task.id}: the reference query returns nothing: {task.sql}")
    if any(v is None for v in values):
        raise ValueError(f"{task.id}: the reference query returns NULL: {task.sql}")
    if len(values) > MAX_EXPECTED_VALUES:
        raise ValueError(f"{task.id}: the reference query returns {len(values)} values (at most "
                         f"{MAX_EXPECTED_VALUES}): {task.sql}")
    return values


def sql_expectations(tasks: list[Task], sqlite_path: Path) -> dict[str, list]:
    conn = _read_only(sqlite_path)
    try:
        return {t.id: expected_values(conn, t) for t in tasks if t.sql}
    finally:
        conn.close()


def database_fingerprint(sqlite_path: Path) -> str:
    """A digest of every row of every table: equal before and after a task when nothing was written."""
    digest = hashlib.sha256()
    conn = _read_only(sqlite_path)
    try:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
        for table in tables:
            digest.update(table.encode())
            for row in conn.execute(f'SELECT * FROM "{table}" ORDER BY 1'):
                digest.update(repr(row).encode())
    finally:
        conn.close()
    return digest.hexdigest()
