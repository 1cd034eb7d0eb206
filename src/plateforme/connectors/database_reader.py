"""Read-only access to a registered database, off the event loop.

    reader = DatabaseReader(config)
    result = await reader.query("SELECT ...", timeout_s=3)   # QueryResult, or raises QueryRefused
    tables = await reader.schema()                           # {table: [(column, type)] | None}
    warnings = await reader.check()                          # registration: raises BadInput if a
                                                             # listed table or column is missing

Each call opens its own connection in a worker thread (sqlite3 and psycopg block), so the event
loop keeps serving while a query runs; the statement's own timeout (SQLite's progress handler,
PostgreSQL's statement_timeout) bounds the thread. How each database enforces read-only, the
allowed tables and the timeout: connectors/sqlite_reader.py, connectors/postgres_reader.py.
"""

import asyncio

from plateforme.agents.errors import BadInput
from plateforme.connectors import sqlite_reader
from plateforme.connectors.database_config import DatabaseConfig
from plateforme.connectors.database_result import QueryRefused, QueryResult


def _postgres():
    """connectors/postgres_reader.py, imported with the first PostgreSQL connector's use: psycopg
    costs 0.3 s at every start of a process that has none."""
    from plateforme.connectors import postgres_reader

    return postgres_reader


class DatabaseReader:
    def __init__(self, config: DatabaseConfig):
        self.config = config

    def _query(self, sql: str, timeout_s: float, row_cap: int) -> QueryResult:
        if self.config.dialect == "sqlite":
            return sqlite_reader.query(self.config, sql, timeout_s, row_cap)
        return _postgres().query(self.config, sql, timeout_s, row_cap)

    async def query(self, sql: str, timeout_s: float | None = None, row_cap: int | None = None) -> QueryResult:
        if not isinstance(sql, str) or not sql.strip():
            raise QueryRefused("no SQL to run: pass one SELECT statement as `sql`")
        timeout_s = self.config.timeout_s if timeout_s is None else min(timeout_s, self.config.timeout_s)
        if timeout_s <= 0:
            raise QueryRefused("refused: no time is left for a query in this response (the conversation's wall-time "
                               "bound, PLATEFORME_AGENT_MAX_SECONDS)")
        row_cap = self.config.row_cap if row_cap is None else min(row_cap, self.config.row_cap)
        return await asyncio.to_thread(self._query, sql.strip(), timeout_s, row_cap)

    def _schema(self) -> dict:
        if self.config.dialect == "sqlite":
            return sqlite_reader.schema(self.config)
        return _postgres().schema(self.config, self.config.timeout_s)

    async def schema(self) -> dict[str, list[tuple[str, str | None]] | None]:
        return await asyncio.to_thread(self._schema)

    async def check(self, param: str = "tables") -> list[str]:
        """At registration: the connection works and every listed table and column exists (else a
        400 naming it); returns warnings (PostgreSQL: unlisted tables the role can also read)."""
        try:
            tables = await self.schema()
        except QueryRefused as exc:
            raise BadInput(f"url: {exc}", "url") from None
        for table, columns in tables.items():
            if columns is None:
                raise BadInput(f"{param}.{table}: the database has no table {table!r} (or the connection's role "
                               "cannot read it); list tables that exist", f"{param}.{table}")
            missing = [c for c, kind in columns if kind is None]
            if missing:
                raise BadInput(f"{param}.{table}: the table has no column {', '.join(map(repr, missing))}; list "
                               "columns that exist, or \"*\"", f"{param}.{table}")
        if self.config.dialect != "postgresql":
            return []
        unlisted = await asyncio.to_thread(_postgres().unlisted_readable, self.config, self.config.timeout_s)
        if not unlisted:
            return []
        shown = ", ".join(unlisted[:10]) + (f" and {len(unlisted) - 10} more" if len(unlisted) > 10 else "")
        return [f"the connection's role can also read unlisted tables ({shown}); the connector refuses them from "
                "the query plan, but for a guarantee the database keeps on its own, connect as a role granted "
                "SELECT on the listed tables only (docs/connectors.md)"]
