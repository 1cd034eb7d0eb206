"""Read-only queries of an SQLite database connector, with its rules enforced by SQLite itself.

- Read-only twice over: the file is opened with `mode=ro` (SQLite refuses every write to it:
  "attempt to write a readonly database") and `PRAGMA query_only` is on (no temporary table or
  other change either). The SQL is never parsed here.
- Allowed tables and columns: an authorizer (sqlite3_set_authorizer) that SQLite calls while it
  compiles the statement, for every table and column it will read (a table read without columns,
  as by count(*), is reported with an empty column; so is a common table expression, which is
  told from a table by the file's schema). Anything unlisted is denied, and so are
  PRAGMA (it could turn query_only off), ATTACH (another file) and reads of sqlite_schema.
- Timeout: a progress handler that interrupts the statement once its deadline has passed.
- Row cap: at most row_cap rows are fetched (one more tells that the result was truncated).

Synchronous (the sqlite3 module): callers run it in a worker thread.
"""

import sqlite3
import time

from plateforme.connectors.database_config import DatabaseConfig
from plateforme.connectors.database_result import QueryRefused, QueryResult, json_value

_PROGRESS_OPCODES = 2000  # how often (in VM instructions) the deadline is checked
_ALLOWED_ACTIONS = {sqlite3.SQLITE_SELECT, sqlite3.SQLITE_FUNCTION, sqlite3.SQLITE_RECURSIVE}
# Writes are let through to the read-only database, which refuses them itself with its reason.
_WRITE_ACTIONS = {sqlite3.SQLITE_INSERT, sqlite3.SQLITE_UPDATE, sqlite3.SQLITE_DELETE}


def _open(config: DatabaseConfig, timeout_s: float) -> tuple[sqlite3.Connection, set[str]]:
    path = config.sqlite_path
    try:
        # timeout: how long to wait for a writer's lock on the file, within the query's own bound
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=timeout_s)
        conn.execute("PRAGMA query_only = ON")
        # Read before the authorizer is set: the names of the file's tables and views.
        names = {row[0].lower() for row in conn.execute("SELECT name FROM sqlite_schema")}
    except sqlite3.Error as exc:
        raise QueryRefused(f"cannot open the SQLite database {path}: {exc}; check that the file exists and the "
                           "server can read it") from None
    return conn, names


def _authorizer(config: DatabaseConfig, names: set[str], denied: list[str]):
    tables = {t.lower(): (c if c == "*" else {x.lower() for x in c}) for t, c in config.tables.items()}
    listed = ", ".join(config.tables)

    def check(action, arg1, arg2, db_name, source):
        if action in _ALLOWED_ACTIONS:
            return sqlite3.SQLITE_OK
        if action == sqlite3.SQLITE_READ:
            if source and source.lower() in tables:  # read by a listed view on the agent's behalf
                return sqlite3.SQLITE_OK
            columns = tables.get((arg1 or "").lower())
            if columns is None and not arg2 and db_name is None and (arg1 or "").lower() not in names:
                return sqlite3.SQLITE_OK  # a common table expression's name (what it reads is checked)
            if columns is None:
                denied.append(f"table {arg1!r} is not one this connector may read (allowed: {listed})")
                return sqlite3.SQLITE_DENY
            if columns != "*" and arg2 and arg2.lower() not in columns:
                denied.append(f"column {arg1}.{arg2} is not one this connector may read (allowed in {arg1}: "
                              f"{', '.join(config.tables[_key(config, arg1)])})")
                return sqlite3.SQLITE_DENY
            return sqlite3.SQLITE_OK
        if action in _WRITE_ACTIONS:
            return sqlite3.SQLITE_OK
        if action == sqlite3.SQLITE_PRAGMA:
            denied.append("PRAGMA statements cannot run through this connector")
        elif action in (sqlite3.SQLITE_ATTACH, sqlite3.SQLITE_DETACH):
            denied.append("ATTACH, DETACH and VACUUM cannot run through this connector")
        else:
            return sqlite3.SQLITE_OK  # schema changes: the read-only database refuses them itself
        return sqlite3.SQLITE_DENY

    return check


def _key(config: DatabaseConfig, table: str) -> str:
    return next(t for t in config.tables if t.lower() == table.lower())


def query(config: DatabaseConfig, sql: str, timeout_s: float, row_cap: int) -> QueryResult:
    conn, names = _open(config, timeout_s)
    denied: list[str] = []
    started = time.monotonic()
    deadline = started + timeout_s
    try:
        conn.set_authorizer(_authorizer(config, names, denied))
        conn.set_progress_handler(lambda: 1 if time.monotonic() > deadline else 0, _PROGRESS_OPCODES)
        try:
            cursor = conn.execute(sql)
            columns = [d[0] for d in cursor.description or ()]
            fetched = cursor.fetchmany(row_cap + 1) if columns else []
        except sqlite3.Error as exc:
            if denied:
                raise QueryRefused(f"refused: {denied[0]}") from None
            if time.monotonic() > deadline or "interrupted" in str(exc):
                raise QueryRefused(f"refused: the query ran longer than its {timeout_s:g} s timeout and was stopped; "
                                   "simplify it (filter, aggregate, LIMIT)") from None
            raise QueryRefused(f"the database refused the query: {exc}") from None
    finally:
        conn.close()
    elapsed_ms = (time.monotonic() - started) * 1000
    rows = [[json_value(v) for v in row] for row in fetched[:row_cap]]
    return QueryResult(sql, columns, rows, len(fetched) > row_cap, elapsed_ms)


def schema(config: DatabaseConfig) -> dict[str, list[tuple[str, str]] | None]:
    """Each listed table's readable (column, type) pairs as the database has them, None where the
    table does not exist."""
    conn, _ = _open(config, config.timeout_s)
    try:
        out = {}
        for table, allowed in config.tables.items():
            found = conn.execute("SELECT name, type FROM pragma_table_info(?)", (table,)).fetchall()
            if not found:
                out[table] = None
                continue
            keep = None if allowed == "*" else {c.lower() for c in allowed}
            by_name = {name.lower(): (name, kind or "") for name, kind in found}
            out[table] = [by_name.get(c.lower(), (c, None)) for c in allowed] if keep else list(by_name.values())
        return out
    finally:
        conn.close()
