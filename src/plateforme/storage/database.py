"""Database connection: SQLite (WAL, with sqlite-vec and FTS5) in the data directory by default,
PostgreSQL by URL.

Migrations (Alembic) are applied by `open_database`, so a fresh or older database is brought
to the current schema before the platform uses it.
"""

from pathlib import Path

import sqlite_vec
from sqlean import dbapi2 as sqlean_dbapi2
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

from plateforme.storage.migrate import upgrade_to_head

SQLITE_FILE = "plateforme.db"


def default_url(data_dir: Path) -> str:
    return f"sqlite:///{Path(data_dir) / SQLITE_FILE}"


def _sqlite_setup(dbapi_connection, _record) -> None:
    # sqlite-vec (vector search for document libraries) is an extension: load it on every connection.
    dbapi_connection.enable_load_extension(True)
    sqlite_vec.load(dbapi_connection)
    dbapi_connection.enable_load_extension(False)
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


def make_engine(url: str) -> Engine:
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://"):]
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        # sqlean.py: the standard sqlite3 module's API over an SQLite that can load extensions and
        # has FTS5 (many Python builds, pyenv's among them, cannot load extensions).
        engine = create_engine(url, module=sqlean_dbapi2,
                               connect_args={"check_same_thread": False, "timeout": 10})
        event.listen(engine, "connect", _sqlite_setup)
        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)


class Database:
    def __init__(self, engine: Engine):
        self.engine = engine
        self.session = sessionmaker(engine, expire_on_commit=False)

    def dispose(self) -> None:
        self.engine.dispose()


def open_database(url: str) -> Database:
    """Connect, apply pending migrations, and return the session factory."""
    engine = make_engine(url)
    upgrade_to_head(engine)
    return Database(engine)


__all__ = ["Database", "Session", "default_url", "make_engine", "open_database"]
