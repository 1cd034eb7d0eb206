"""Fixtures: real `plateforme serve` processes on the real default model."""

import os
import sys
import uuid
from pathlib import Path

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).parent))

from server_process import DEFAULT_MODEL, ServerProcess  # noqa: E402

# A prompt on which the 135M default model reliably answers "Paris" at temperature 0.
PARIS_MESSAGES = [
    {"role": "system", "content": "Answer in one short English sentence."},
    {"role": "user", "content": "What is the capital of France?"},
]


@pytest.fixture(scope="session", autouse=True)
def one_ssl_context_per_test_process():
    """The test process's httpx clients share their default SSL context.

    httpx builds a new one for every client, so for every top-level httpx.get/post and every SDK
    client: loading the CA bundle, about 40 ms of CPU each time, taken from the servers under test
    on a 2-core machine (polling loops made dozens a second). An SSL context may serve any number
    of clients (what httpx's `verify=ctx` is for); the tests speak plain HTTP to local servers
    anyway. Only this process: the servers under test are other processes, left as they are.
    """
    from httpx._transports import default as transports

    original = getattr(transports, "create_ssl_context", None)
    if original is None:  # another httpx layout: nothing to share
        yield
        return
    shared: dict = {}

    def create_ssl_context(verify=True, cert=None, trust_env=True):
        if cert is not None or not isinstance(verify, bool):  # a client's own certificates: its own context
            return original(verify=verify, cert=cert, trust_env=trust_env)
        if (verify, trust_env) not in shared:
            shared[verify, trust_env] = original(verify=verify, cert=cert, trust_env=trust_env)
        return shared[verify, trust_env]

    transports.create_ssl_context = create_ssl_context
    yield
    transports.create_ssl_context = original


@pytest.fixture(scope="session")
def start_server(tmp_path_factory):
    """Factory: start a server with given models config / env; all are stopped at session end."""
    started: list[ServerProcess] = []

    def start(models: list[dict] | None = None, env: dict | None = None) -> ServerProcess:
        server = ServerProcess(tmp_path_factory.mktemp("server"), models, env)
        started.append(server)
        server.wait_healthy()
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture(scope="session")
def server(start_server) -> ServerProcess:
    """The platform with its packaged default config (default model, 16 slots)."""
    return start_server()


@pytest.fixture
def http(server):
    with httpx.Client(base_url=server.url, timeout=120) as client:
        yield client


@pytest.fixture
def model() -> str:
    return DEFAULT_MODEL


@pytest.fixture(scope="session")
def postgres():
    """A private PostgreSQL server; skipped only where none is installed and CI did not ask for it."""
    from postgres_server import PostgresServer, find_pg_bin

    if find_pg_bin() is None and not os.environ.get("PLATEFORME_TEST_REQUIRE_POSTGRES"):
        pytest.skip("PostgreSQL server not installed (apt-get install postgresql)")
    server = PostgresServer()
    yield server
    server.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path) -> str:
    """A fresh, empty database URL: SQLite in a temporary directory, then PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'plateforme.db'}"
    return request.getfixturevalue("postgres").create_database(f"t_{uuid.uuid4().hex[:12]}")


def database_env(request, kind: str) -> dict:
    """Server env for a fresh database of `kind` ("sqlite": the default file in the data dir)."""
    if kind == "sqlite":
        return {}
    url = request.getfixturevalue("postgres").create_database(f"t_{uuid.uuid4().hex[:12]}")
    return {"PLATEFORME_DATABASE_URL": url}


@pytest.fixture(scope="session")
def training_cache_dir(tmp_path_factory) -> Path:
    """One cache of dequantised base weights for every fine-tuning test of the session."""
    return tmp_path_factory.mktemp("training-cache")
