"""The tools of a database connector: inspect the allowed schema, run read-only SQL.

An agent's `{"type": "connector", "connector_id": "sales"}` on a database connector gives the
model two functions:
- `sales_schema` {}: the tables and columns it may read, as the live database has them;
- `sales_query` {sql}: one read-only statement; the answer is the executed query and its rows as
  a Markdown table (info: query, columns, rows, row_count, truncated, elapsed_ms).
A write, an unlisted table or column, a timeout or bad SQL is refused by the database (see
connectors/database_reader.py) and comes back as ToolOutcome(error=reason): the model reads the
reason and the conversation goes on.
"""

import time

from plateforme.agent_tools.base import PlatformTool, ToolContext, ToolOutcome, ToolSpecError
from plateforme.agent_tools.configuration import configured
from plateforme.agents.errors import BadInput
from plateforme.connectors.database_config import stored_database_config
from plateforme.connectors.database_reader import DatabaseReader
from plateforme.connectors.database_result import QueryRefused

_NAME_ROOM = 64 - len("_schema")


def schema_text(name: str, dialect: str, tables: dict) -> str:
    lines = [f"Tables of the {name} database that you may query (read-only {dialect} SQL):"]
    for table, columns in tables.items():
        if columns is None:
            lines.append(f"- {table}: (missing from the database)")
        else:
            lines.append(f"- {table}(" + ", ".join(f"{c} {kind}" if kind else c for c, kind in columns) + ")")
    return "\n".join(lines)


class DatabaseTools:
    def __init__(self, settings):
        self.settings = settings

    def reader(self, connector) -> DatabaseReader:
        return DatabaseReader(stored_database_config(connector.config, self.settings))

    async def tools(self, principal, connector, spec: dict, param: str) -> list[PlatformTool]:
        try:
            reader = self.reader(connector)
        except BadInput as exc:
            raise ToolSpecError(f"{param}.connector_id: the database connector {connector.name!r} has a "
                                f"configuration this server refuses ({exc}); an admin registers it again",
                                f"{param}.connector_id") from None
        name = connector.name[:_NAME_ROOM]
        dialect = "SQLite" if reader.config.dialect == "sqlite" else "PostgreSQL"
        about = f" ({connector.description})" if connector.description else ""

        async def run_schema(args: dict, context: ToolContext) -> ToolOutcome:
            try:
                tables = await reader.schema()
            except QueryRefused as exc:
                return ToolOutcome(content=str(exc), info={"error": str(exc)}, error=str(exc))
            info = {"dialect": reader.config.dialect, "tables": {
                t: None if cols is None else [{"name": c, "type": k} for c, k in cols] for t, cols in tables.items()}}
            return ToolOutcome(content=schema_text(connector.name, dialect, tables), info=info)

        async def run_query(args: dict, context: ToolContext) -> ToolOutcome:
            sql = args.get("sql") if isinstance(args, dict) else None
            left = context.deadline - time.monotonic()
            try:
                result = await reader.query(sql, timeout_s=left)
            except QueryRefused as exc:
                reason = str(exc)
                return ToolOutcome(content=f"Query refused: {reason}", info={"query": sql, "error": reason},
                                   error=reason)
            return ToolOutcome(content=result.as_markdown(reader.config.row_cap), info=result.info())

        tools = [
            PlatformTool(
                name=f"{name}_schema", entry_name=f"{connector.name}.schema",
                description=f"List the tables and columns of the {connector.name} {dialect} database{about} "
                            "that can be queried.",
                parameters={"type": "object", "properties": {}}, run=run_schema),
            PlatformTool(
                name=f"{name}_query", entry_name=f"{connector.name}.query",
                description=f"Run one read-only SQL query (a SELECT) on the {connector.name} {dialect} database"
                            f"{about}. Tables: {', '.join(reader.config.tables)}. Returns at most "
                            f"{reader.config.row_cap} rows as a table.",
                parameters={"type": "object", "properties": {
                    "sql": {"type": "string", "description": f"One {dialect} SELECT statement."}},
                    "required": ["sql"]},
                run=run_query),
        ]
        return configured(tools, spec.get("tool_configuration"))
