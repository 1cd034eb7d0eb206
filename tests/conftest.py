"""Fixtures: real `plateforme serve` processes on the real default model."""

import os
import sys
import uuid
from pathlib import Path

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).parent))
# OpenMP threads sleep when idle instead of spinning, in every process of the run: the llama.cpp
# workers (xllamacpp links libgomp), the trainers and torch in this process. libgomp reads it once,
# when it loads, so before anything imports it; the servers and trainers inherit it. Spinning
# threads took the cores from the very processes they wait for: measured on the loaded 2-core
# machine, 16 chat completions of 48 tokens (4 at a time) on the default model cost its worker
# 127-169 s of CPU and 247-260 s of wall time spinning, 21-22 s and 34-37 s passive.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from server_process import DEFAULT_MODEL, ServerProcess  # noqa: E402

# A prompt on which the 135M default model reliably answers "Paris" at temperature 0.
PARIS_MESSAGES = [
    {"role": "system", "content": "Answer in one short English sentence."},
    {"role": "user", "content": "What is the capital of France?"},
]


# `make test` runs the suite on 2 pytest-xdist workers, a module at a time each (--dist loadfile,
# --no-loadscope-reorder: modules in collection order). Each worker takes the next module when it
# is done, so the longest ones go first: the run does not end with one worker idle while the
# other runs the fine-tuning API for two minutes. Longest first, by their wall time under `make
# test` on the 2-core machine; the others follow in their usual order.
SLOWEST_FIRST = [
    "test_fine_tuning_api", "test_training_run", "test_traces", "test_fuzz", "test_libraries_api",
    "test_mcp_connector", "test_classifier_jobs", "test_tenancy_api", "test_database_connector",
    "test_structured_outputs", "test_retrieval_quality", "test_mistral_prompts", "test_concurrency",
    "test_files_api", "test_model_import", "test_conversations_api", "test_remote_endpoints",
    "test_hardening_health", "test_native_tool_template", "test_adapter_host", "test_agent_library",
    "test_observability", "test_replicas", "test_slow_clients", "test_remote_engine", "test_cli",
]


def pytest_collection_modifyitems(session, config, items):
    rank = {name: i for i, name in enumerate(SLOWEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.stem, len(rank)))  # stable: within a module, as written


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


class _Servers:
    """The servers tests start: a module's are stopped when the module ends, shared ones at the end."""

    def __init__(self, tmp_path_factory):
        self.tmp_path_factory = tmp_path_factory
        self.of_session: list[ServerProcess] = []
        self.of_module: list[ServerProcess] = []

    def start(self, models: list[dict] | None = None, env: dict | None = None, *,
              shared: bool = False) -> ServerProcess:
        server = ServerProcess(self.tmp_path_factory.mktemp("server"), models, env)
        (self.of_session if shared else self.of_module).append(server)
        server.wait_healthy()
        return server

    @staticmethod
    def stop(servers: list[ServerProcess]) -> None:
        while servers:
            servers.pop().stop()


@pytest.fixture(scope="session")
def _servers(tmp_path_factory):
    servers = _Servers(tmp_path_factory)
    yield servers
    servers.stop(servers.of_module)
    servers.stop(servers.of_session)


@pytest.fixture(scope="session")
def start_server(_servers):
    """Factory: start a server with given models config / env.

    Stopped when the module that started it ends (idle servers and their llama.cpp workers kept
    hundreds of MB each and a little CPU until the end of the session); `shared=True` for one that
    several modules use (stopped at the end of the session)."""
    return _servers.start


@pytest.fixture(scope="module", autouse=True)
def _stop_the_modules_servers(_servers):
    """Set up before a module's own fixtures, so torn down after them: its servers are no longer used."""
    yield
    _servers.stop(_servers.of_module)


@pytest.fixture(scope="session")
def server(start_server) -> ServerProcess:
    """The platform with its packaged default config (default model, 16 slots)."""
    return start_server(shared=True)


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
    """One cache of dequantised base weights (and tokenizer) for every fine-tuning test of the run.

    Under pytest-xdist each worker has its own base temporary directory inside the run's: the
    cache goes in the run's, so the workers share it (filling it costs about a minute of CPU;
    entries are renamed into place whole, so two trainers filling it at once are harmless)."""
    base = tmp_path_factory.getbasetemp()
    run_dir = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    cache = run_dir / "training-cache"
    cache.mkdir(exist_ok=True)
    return cache
