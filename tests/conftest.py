"""Fixtures: real `plateforme serve` processes on the real default model."""

import sys
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
