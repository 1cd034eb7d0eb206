"""A database connector's configuration, as an admin registers it and as it is stored.

    {"url": "postgresql://reader:${SALES_DB_PASSWORD}@db.internal:5432/sales",
     "tables": {"orders": "*", "customers": ["id", "name", "city"]},
     "row_cap": 100, "timeout_s": 3}

- `url`: `sqlite:////absolute/path.db` (SQLAlchemy's spelling, also `sqlite:///` + an absolute
  path) or `postgresql://...` (`postgres://` too). Credentials are `${ENV_VAR}` placeholders,
  resolved from the server's environment each time a connection is made and never stored
  resolved; a literal password in the URL is refused, so no secret reaches the database of
  the platform or its audit log.
- `tables`: the tables the agent may read, each with its readable columns or "*" (all).
  PostgreSQL tables may be schema-qualified ("sales.orders"); unqualified ones are in `public`.
- `row_cap` (at most settings.database_row_cap) and `timeout_s` (at most
  settings.database_timeout_s): the most rows a query returns and how long it may run.
"""

import os
import re
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from plateforme.agents.errors import BadInput

_PLACEHOLDER = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]{0,62}$")


class MissingCredential(Exception):
    """A `${VAR}` of the URL is not set in the server's environment."""


@dataclass(frozen=True)
class DatabaseConfig:
    url: str  # as registered: placeholders unresolved
    tables: dict  # table -> tuple of column names, or "*"
    row_cap: int
    timeout_s: float

    @property
    def dialect(self) -> str:
        return "sqlite" if self.url.startswith("sqlite:") else "postgresql"

    @property
    def sqlite_path(self) -> str:
        return self.url[len("sqlite:///"):]

    def columns(self, table: str) -> tuple[str, ...] | str:
        return self.tables[table]

    def resolved_url(self, environ=None) -> str:
        """The URL with each `${VAR}` replaced by the environment's value; MissingCredential names
        the variable that is not set."""
        environ = os.environ if environ is None else environ

        def value(match: re.Match) -> str:
            name = match.group(1)
            if name not in environ:
                raise MissingCredential(f"the environment variable {name} that the connection URL names is not set "
                                        "on the server; set it where the server runs, then retry")
            return environ[name]

        return _PLACEHOLDER.sub(value, self.url)

    def as_stored(self) -> dict:
        return {"url": self.url, "tables": {t: c if c == "*" else list(c) for t, c in self.tables.items()},
                "row_cap": self.row_cap, "timeout_s": self.timeout_s}


def _check_url(url, param: str) -> str:
    if not isinstance(url, str) or not url.strip():
        raise BadInput(f"{param}: the connection URL is missing; use sqlite:////path/to/file.db or "
                       "postgresql://user:${PASSWORD_VAR}@host:5432/dbname", param)
    url = url.strip()
    if url.startswith("sqlite:"):
        if not url.startswith("sqlite:///") or not os.path.isabs(url[len("sqlite:///"):]):
            raise BadInput(f"{param}: an SQLite URL names an absolute path: sqlite:////path/to/file.db", param)
        return url
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://"):]
    if url.startswith("postgresql+psycopg://"):
        url = "postgresql://" + url[len("postgresql+psycopg://"):]
    if not url.startswith("postgresql://"):
        raise BadInput(f"{param}: {url.split(':', 1)[0]!r} databases are not supported; use an SQLite file "
                       "(sqlite:////path.db) or PostgreSQL (postgresql://...)", param)
    password = urlsplit(url).password
    if password is not None and not _PLACEHOLDER.fullmatch(unquote(password)):
        raise BadInput(f"{param}: the URL holds a password; put it in an environment variable of the server and "
                       "name it instead (postgresql://user:${SALES_DB_PASSWORD}@host/db), so it is never stored",
                       param)
    return url


def _check_tables(tables, dialect: str, param: str) -> dict:
    if not isinstance(tables, dict) or not tables:
        raise BadInput(f"{param}: list the tables the agent may read, each with its columns or \"*\": "
                       '{"orders": "*", "customers": ["id", "name"]}', param)
    out = {}
    for table, columns in tables.items():
        parts = table.split(".") if isinstance(table, str) else [None]
        if len(parts) > (2 if dialect == "postgresql" else 1) or not all(p and _IDENTIFIER.match(p) for p in parts):
            raise BadInput(f"{param}: {table!r} is not a table name (letters, digits and '_'"
                           f"{'; schema.table for PostgreSQL' if dialect == 'postgresql' else ''})", param)
        if columns == "*":
            out[table] = "*"
            continue
        if (not isinstance(columns, list) or not columns
                or not all(isinstance(c, str) and _IDENTIFIER.match(c) for c in columns)):
            raise BadInput(f"{param}.{table}: give the readable columns as a list of names, or \"*\" for all",
                           f"{param}.{table}")
        out[table] = tuple(dict.fromkeys(columns))
    return out


def _bounded(value, default, cap, kind, param: str, setting: str):
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (kind is int and value != int(value)):
        raise BadInput(f"{param}: must be a {'whole ' if kind is int else ''}number", param)
    if not 0 < value <= cap:
        raise BadInput(f"{param}: {value} is outside 1..{cap}; the server's bound is {setting}={cap}", param)
    return kind(value)


def parse_database_config(config: dict, settings, param: str = "") -> DatabaseConfig:
    """A DatabaseConfig from a registration body or a stored config; BadInput names the field."""
    prefix = f"{param}." if param else ""
    url = _check_url(config.get("url"), f"{prefix}url")
    dialect = "sqlite" if url.startswith("sqlite:") else "postgresql"
    tables = _check_tables(config.get("tables"), dialect, f"{prefix}tables")
    cap, limit = settings.database_row_cap, settings.database_timeout_s
    row_cap = _bounded(config.get("row_cap"), cap, cap, int, f"{prefix}row_cap", "PLATEFORME_DATABASE_ROW_CAP")
    timeout_s = _bounded(config.get("timeout_s"), limit, limit, float, f"{prefix}timeout_s",
                         "PLATEFORME_DATABASE_TIMEOUT_S")
    return DatabaseConfig(url, tables, row_cap, timeout_s)


def stored_database_config(config: dict, settings) -> DatabaseConfig:
    """A stored config, with its bounds lowered to the server's if the settings changed since."""
    parsed = parse_database_config({**config, "row_cap": None, "timeout_s": None}, settings)
    return DatabaseConfig(parsed.url, parsed.tables,
                          min(int(config.get("row_cap") or parsed.row_cap), parsed.row_cap),
                          min(float(config.get("timeout_s") or parsed.timeout_s), parsed.timeout_s))
