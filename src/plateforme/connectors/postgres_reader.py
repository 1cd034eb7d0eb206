"""Read-only queries of a PostgreSQL database connector, with its rules enforced by PostgreSQL.

One connection per query (nothing a statement sets survives it), opened with
`default_transaction_read_only=on` and `statement_timeout`, then:
- `BEGIN READ ONLY` and a first `SELECT 1`: the transaction has its snapshot, so not even
  `SET TRANSACTION READ WRITE` can lift the read-only mode (PostgreSQL refuses it "after any
  query"); every write is refused by PostgreSQL itself ("cannot execute DELETE in a read-only
  transaction"). The SQL is never parsed here.
- One statement only: it is sent with the extended protocol, which refuses several commands.
- Allowed tables: `EXPLAIN (VERBOSE, FORMAT JSON)` of the statement; every relation the planner
  will scan must be a listed table, and the columns each scan reads listed columns
  (connectors/postgres_plan.py). Built-in functions that read out of the plan's sight
  (query_to_xml, dblink, pg_read_file...) are refused. A function written in the database can
  still run SQL of its own: for a guarantee that does not depend on the plan, register a URL
  whose role has SELECT on the listed tables only (registration warns when it can read more).
- Timeout: `statement_timeout` (the plan and the query each).
- Row cap: rows are streamed and the connection dropped after row_cap + 1.

Synchronous (psycopg): callers run it in a worker thread.
"""

import time

import psycopg

from plateforme.connectors import postgres_plan
from plateforme.connectors.database_config import DatabaseConfig, MissingCredential
from plateforme.connectors.database_result import QueryRefused, QueryResult, json_value


def _split(table: str) -> tuple[str, str]:
    schema, _, name = table.rpartition(".")
    return (schema or "public").lower(), name.lower()


def _connect(config: DatabaseConfig, timeout_s: float) -> psycopg.Connection:
    try:
        url = config.resolved_url()
    except MissingCredential as exc:
        raise QueryRefused(f"cannot connect: {exc}") from None
    try:
        conn = psycopg.connect(url, connect_timeout=max(2, int(timeout_s + 0.999)),
                               application_name="plateforme-connector",
                               options=f"-c default_transaction_read_only=on "
                                       f"-c statement_timeout={max(1, int(timeout_s * 1000))}")
    except psycopg.Error as exc:
        # The message names host, port and user, never the password (libpq does not echo it).
        raise QueryRefused(f"cannot connect to the PostgreSQL database: {str(exc).strip()}") from None
    conn.read_only = True
    return conn


def _refusal(exc: psycopg.Error, timeout_s: float) -> QueryRefused:
    if isinstance(exc, psycopg.errors.QueryCanceled):
        return QueryRefused(f"refused: the query ran longer than its {timeout_s:g} s timeout and was stopped; "
                            "simplify it (filter, aggregate, LIMIT)")
    if isinstance(exc, psycopg.errors.ReadOnlySqlTransaction):
        return QueryRefused(f"refused by the database: {str(exc).strip()} (this connector is read-only)")
    message = (exc.diag.message_primary or str(exc)).strip()
    if isinstance(exc, psycopg.errors.SyntaxError) and "multiple commands" not in message:
        message += " (only queries run here: SELECT, WITH, VALUES or TABLE)"
    return QueryRefused(f"the database refused the query: {message}")


def _table_columns(cursor, schema: str, name: str) -> list[str]:
    rows = cursor.execute("SELECT a.attname FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid "
                          "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE lower(n.nspname) = %s "
                          "AND lower(c.relname) = %s AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum",
                          (schema, name)).fetchall()
    return [r[0] for r in rows]


def _check_plan(config: DatabaseConfig, cursor, plan: dict) -> None:
    allowed = {_split(t): (c if c == "*" else {x.lower() for x in c}) for t, c in config.tables.items()}
    listed = ", ".join(config.tables)
    opaque = postgres_plan.opaque_functions(plan)
    if opaque:
        raise QueryRefused(f"refused: {opaque[0]}() reads data out of the connector's control; query the "
                           f"listed tables directly ({listed})")
    scans = postgres_plan.relations(plan)
    checked = []
    for node, _ in scans:
        key = (node.get("Schema", "public").lower(), node["Relation Name"].lower())
        shown = node["Relation Name"] if key[0] == "public" else f"{key[0]}.{node['Relation Name']}"
        if key not in allowed:
            raise QueryRefused(f"refused: table {shown!r} is not one this connector may read (allowed: {listed})")
        if allowed[key] != "*":
            checked.append((node.get("Alias"), key, shown))
    if not checked:
        return
    table_columns = {alias: _table_columns(cursor, *key) for alias, key, _ in checked}
    read = postgres_plan.columns_read(plan, table_columns)
    for alias, key, shown in checked:
        real = {c.lower() for c in table_columns[alias]}
        columns = allowed[key]
        denied = sorted((real if "*" in read[alias] else read[alias] & real) - columns)
        if denied:
            names = ", ".join(f"{shown}.{c}" for c in denied)
            raise QueryRefused(f"refused: column{'s' if len(denied) > 1 else ''} {names} "
                               f"{'are not ones' if len(denied) > 1 else 'is not one'} this connector may read "
                               f"(allowed in {shown}: {', '.join(sorted(columns))})")


def query(config: DatabaseConfig, sql: str, timeout_s: float, row_cap: int) -> QueryResult:
    started = time.monotonic()
    conn = _connect(config, timeout_s)
    fetched, columns, cut = [], [], False
    try:
        cursor = conn.cursor()
        try:
            cursor.execute("SELECT 1")  # the snapshot: from here the transaction cannot become read-write
            plan = cursor.execute("EXPLAIN (VERBOSE, FORMAT JSON) " + sql, prepare=True).fetchone()[0][0]["Plan"]
            _check_plan(config, cursor, plan)
            for row in cursor.stream(sql):
                if not columns:
                    columns = [d.name for d in cursor.description]
                fetched.append(row)
                if len(fetched) > row_cap:
                    cut = True
                    break
            if not columns and cursor.description:
                columns = [d.name for d in cursor.description]
        except psycopg.Error as exc:
            raise _refusal(exc, timeout_s) from None
    finally:
        if cut:
            try:
                conn.cancel()  # the stream was cut short at the cap: the server stops at once
            except psycopg.Error:
                pass
        conn.close()
    elapsed_ms = (time.monotonic() - started) * 1000
    rows = [[json_value(v) for v in row] for row in fetched[:row_cap]]
    return QueryResult(sql, columns, rows, len(fetched) > row_cap, elapsed_ms)


def schema(config: DatabaseConfig, timeout_s: float) -> dict[str, list[tuple[str, str]] | None]:
    """Each listed table's readable (column, type) pairs as the database has them (columns the
    role may read), None where the table does not exist; a listed column that is not there has
    type None."""
    conn = _connect(config, timeout_s)
    try:
        cursor = conn.cursor()
        out = {}
        for table, allowed in config.tables.items():
            schema_name, name = _split(table)
            rows = cursor.execute("SELECT column_name, data_type FROM information_schema.columns WHERE "
                                  "lower(table_schema) = %s AND lower(table_name) = %s ORDER BY ordinal_position",
                                  (schema_name, name)).fetchall()
            if not rows:
                out[table] = None
                continue
            by_name = {c.lower(): (c, kind) for c, kind in rows}
            out[table] = list(by_name.values()) if allowed == "*" else [by_name.get(c.lower(), (c, None))
                                                                        for c in allowed]
        return out
    except psycopg.Error as exc:
        raise _refusal(exc, timeout_s) from None
    finally:
        conn.close()


def unlisted_readable(config: DatabaseConfig, timeout_s: float) -> list[str]:
    """Tables (and views) the URL's role may SELECT that the connector does not list."""
    conn = _connect(config, timeout_s)
    try:
        rows = conn.execute("SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                            "WHERE c.relkind IN ('r', 'v', 'm', 'p', 'f') AND n.nspname NOT IN "
                            "('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%' "
                            "AND has_table_privilege(c.oid, 'SELECT') ORDER BY 1, 2").fetchall()
    except psycopg.Error as exc:
        raise _refusal(exc, timeout_s) from None
    finally:
        conn.close()
    listed = {_split(t) for t in config.tables}
    return [name if schema_name == "public" else f"{schema_name}.{name}"
            for schema_name, name in rows if (schema_name.lower(), name.lower()) not in listed]
