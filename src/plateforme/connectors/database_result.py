"""What a read-only query of a database connector gives back, and how the model reads it.

A query the database refuses (a write, an unlisted table or column, a timeout, bad SQL) raises
QueryRefused with the reason; the tool turns it into ToolOutcome(error=...), never a failure of
the conversation.
"""

import base64
import datetime
import decimal
import uuid
from dataclasses import dataclass

_CELL_CHARS = 200  # a cell longer than this is cut in the model's table (info keeps it whole)


class QueryRefused(Exception):
    """The database (or the connector's rules it enforces) refused the query; the message says why."""


@dataclass
class QueryResult:
    query: str
    columns: list[str]
    rows: list[list]  # JSON values
    truncated: bool  # more rows than the cap: only the first row_cap are here
    elapsed_ms: float

    def info(self) -> dict:
        return {"query": self.query, "columns": self.columns, "rows": self.rows, "row_count": len(self.rows),
                "truncated": self.truncated, "elapsed_ms": round(self.elapsed_ms, 1)}

    def as_markdown(self, row_cap: int) -> str:
        """The executed query, then the rows as a Markdown table, then how many rows there are."""
        lines = ["Executed query:", "```sql", self.query, "```"]
        if not self.columns:
            lines.append("The statement returned no result set.")
            return "\n".join(lines)
        lines.append("| " + " | ".join(_cell(c) for c in self.columns) + " |")
        lines.append("|" + "---|" * len(self.columns))
        lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in self.rows]
        count = f"{len(self.rows)} row{'s' if len(self.rows) != 1 else ''}"
        if self.truncated:
            count += f" (truncated: the query returns more; at most {row_cap} rows are shown, refine it)"
        lines.append(count)
        return "\n".join(lines)


def _cell(value) -> str:
    text = "NULL" if value is None else str(value)
    text = text.replace("\\", "\\\\").replace("|", "\\|").replace("\r", " ").replace("\n", " ")
    return text if len(text) <= _CELL_CHARS else text[:_CELL_CHARS - 1] + "…"


def json_value(value):
    """A database value as JSON (dates ISO, decimals as numbers, bytes as base64)."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, decimal.Decimal):
        if not value.is_finite():
            return str(value)
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, (datetime.date, datetime.time, datetime.datetime)):
        return value.isoformat()
    if isinstance(value, datetime.timedelta):
        return value.total_seconds()
    if isinstance(value, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(value)).decode()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, (list, tuple)):
        return [json_value(v) for v in value]
    if isinstance(value, dict):
        return {str(k): json_value(v) for k, v in value.items()}
    return str(value)
