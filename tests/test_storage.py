"""Storage: migrations on SQLite and PostgreSQL, atomic blob writes (local and S3 protocol)."""

import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import pytest
from sqlalchemy import inspect, select, text

from plateforme.storage.blobs import BlobNotFound, LocalBlobStore, check_key
from plateforme.storage.database import open_database
from plateforme.storage.tables import ApiKey, User, Workspace

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def test_migrations_create_the_schema_and_rerun_cleanly(database_url):
    db = open_database(database_url)
    tables = set(inspect(db.engine).get_table_names())
    assert {"workspaces", "users", "api_keys", "files", "usage", "audit_events", "alembic_version"} <= tables
    db.dispose()
    db = open_database(database_url)  # second start: nothing to apply, nothing lost
    with db.session() as s:
        s.add(Workspace(id="ws_1", name="team", created_at=NOW, budget_period="month"))
        s.commit()
    db.dispose()
    db = open_database(database_url)
    with db.session() as s:
        assert s.scalar(select(Workspace.name)) == "team"
    db.dispose()


def test_replicas_starting_together_migrate_one_database_once(postgres):
    """Gateways starting at once on an empty PostgreSQL database: each opens it (migrating under
    an advisory lock), none fails on tables another one is creating."""
    url = postgres.create_database(f"t_race_{uuid.uuid4().hex[:8]}")
    with ThreadPoolExecutor(3) as pool:
        databases = list(pool.map(lambda _: open_database(url), range(3)))
    try:
        with databases[0].session() as s:
            assert s.scalar(text("SELECT count(*) FROM alembic_version")) == 1
    finally:
        for db in databases:
            db.dispose()


def test_deleting_a_workspace_cascades_to_its_users_and_keys(database_url):
    db = open_database(database_url)
    with db.session() as s:
        s.add(Workspace(id="ws_1", name="a", created_at=NOW, budget_period="month"))
        s.flush()
        s.add(User(id="u_1", workspace_id="ws_1", email="a@x", role="admin", created_at=NOW))
        s.flush()
        s.add(ApiKey(id="k_1", prefix="pk_abc", secret_hash="0" * 64, name="k", user_id="u_1",
                     workspace_id="ws_1", created_at=NOW))
        s.commit()
        s.delete(s.get(Workspace, "ws_1"))
        s.commit()
        assert s.scalar(select(ApiKey.id)) is None and s.scalar(select(User.id)) is None
    db.dispose()


@pytest.mark.parametrize("key", ["../etc/passwd", "a/../../b", "/abs", "a b", ""])
def test_blob_keys_cannot_escape_the_store(key):
    with pytest.raises(ValueError):
        check_key(key)


def test_local_blob_put_is_atomic(tmp_path):
    store = LocalBlobStore(tmp_path)
    store.put("ws/file", [b"old"])

    def failing():
        yield b"new-partial"
        raise OSError("disk went away")

    with pytest.raises(OSError):
        store.put("ws/file", failing())
    assert b"".join(store.iter_bytes("ws/file")) == b"old"
    assert not list(tmp_path.rglob(".partial-*"))
    store.delete("ws/file")
    with pytest.raises(BlobNotFound):
        list(store.iter_bytes("ws/file"))


def test_s3_blob_store_against_an_s3_protocol_server(tmp_path, monkeypatch):
    """moto's server mode speaks the S3 HTTP protocol on loopback; boto3 talks to it for real."""
    boto3 = pytest.importorskip("boto3")
    from moto.server import ThreadedMotoServer

    from plateforme.storage.blobs import open_blob_store
    from server_process import free_port

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        for name, value in {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
                            "AWS_DEFAULT_REGION": "us-east-1",
                            "PLATEFORME_S3_ENDPOINT_URL": f"http://127.0.0.1:{port}"}.items():
            monkeypatch.setenv(name, value)
        boto3.client("s3", endpoint_url=f"http://127.0.0.1:{port}").create_bucket(Bucket="plateforme")
        store = open_blob_store("s3://plateforme/prefix")
        big = bytes(range(256)) * 40_000  # 10 MB: a multipart upload
        assert store.put("ws_1/file_1", (big[i:i + 1_000_000] for i in range(0, len(big), 1_000_000))) == len(big)
        assert store.exists("ws_1/file_1")
        assert b"".join(store.iter_bytes("ws_1/file_1")) == big
        store.delete("ws_1/file_1")
        assert not store.exists("ws_1/file_1")
        with pytest.raises(BlobNotFound):
            list(store.iter_bytes("ws_1/file_1"))
    finally:
        server.stop()


def test_migrations_match_the_declared_tables(database_url):
    """Every table module's declarations and the migrations agree (alembic's comparison finds
    no table, column or index that one has and the other lacks)."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    import plateforme.storage.agent_tables  # noqa: F401  (each registers its tables on Base)
    import plateforme.storage.connector_tables  # noqa: F401
    import plateforme.storage.conversation_tables  # noqa: F401
    import plateforme.storage.fine_tuning_tables  # noqa: F401
    import plateforme.storage.library_tables  # noqa: F401
    import plateforme.storage.rate_tables  # noqa: F401
    import plateforme.storage.trace_tables  # noqa: F401
    from plateforme.storage.tables import Base

    db = open_database(database_url)
    try:
        with db.engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    finally:
        db.dispose()
    assert diff == []
