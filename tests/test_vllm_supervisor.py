"""Engine `vllm`: the supervision of its server process, with a stand-in for vLLM.

vLLM cannot run in CI (no GPU, and its CPU wheel takes minutes to install and to start), so a
stand-in `vllm` package on PYTHONPATH plays its server module: it records what it was started
with, answers `/health` on the port it was given, and leaves behind an "engine" child that
ignores SIGTERM, as a stuck vLLM engine process would. Everything else is real: the launcher
runs in a real Python, the supervisor starts, watches, restarts and stops real processes.
"""

import asyncio
import json
import os
import signal
import time

import httpx
import pytest

from plateforme.engines.supervisor import WorkerState
from plateforme.engines.vllm_supervisor import WATCH_EVERY_S, VLLMSupervisor, descendants
from plateforme.models.spec import ModelSpec

STAND_IN = '''
import json, os, subprocess, sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

args = sys.argv[1:]
engine = subprocess.Popen([sys.executable, "-c",
                           "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(600)"])
with open(os.environ["STAND_IN_RECORD"], "a") as out:
    out.write(json.dumps({"argv0": sys.argv[0], "args": args, "key": os.environ.get("VLLM_API_KEY"),
                          "offline": os.environ.get("HF_HUB_OFFLINE"), "pid": os.getpid(),
                          "engine_pid": engine.pid}) + "\\n")

class Health(BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200 if self.path == "/health" else 404)
        self.end_headers()

    def log_message(self, *args):
        pass

ThreadingHTTPServer(("127.0.0.1", int(args[args.index("--port") + 1])), Health).serve_forever()
'''


@pytest.fixture
def stand_in(tmp_path, monkeypatch):
    server_dir = tmp_path / "site" / "vllm" / "entrypoints" / "openai"
    server_dir.mkdir(parents=True)
    for package in (tmp_path / "site" / "vllm", server_dir.parent, server_dir):
        (package / "__init__.py").write_text("")
    (server_dir / "api_server.py").write_text(STAND_IN)
    record = tmp_path / "record.jsonl"
    monkeypatch.setenv("PYTHONPATH", str(tmp_path / "site"))
    monkeypatch.setenv("STAND_IN_RECORD", str(record))
    (tmp_path / "model").mkdir()
    return tmp_path / "model", record


def starts(record) -> list[dict]:
    return [json.loads(line) for line in record.read_text().splitlines()] if record.exists() else []


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    state = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0]
    return state != "Z"


async def wait_for(condition, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


def test_started_restarted_after_a_crash_and_stopped_with_its_engine_processes(stand_in):
    model_dir, record = stand_in
    spec = ModelSpec(name="big", engine="vllm", context_length=1024, parallel=3,
                     vllm={"model": str(model_dir), "start_timeout_s": 60})

    async def run() -> None:
        sup = VLLMSupervisor(spec)
        sup.start()
        try:
            assert await sup.wait_ready(60), sup.last_error
            first = starts(record)[0]
            assert first["argv0"].endswith("api_server.py")  # vLLM's server module, run as __main__
            assert first["key"] == sup.api_key and len(sup.api_key) >= 32
            assert first["offline"] == "1"
            assert first["args"][first["args"].index("--max-num-seqs") + 1] == "3"
            assert sup.api_key not in " ".join(first["args"])  # never on the command line
            assert not any(sup._key_dir.iterdir())  # the launcher deleted the key file
            assert sup.status().pid == first["pid"]
            assert (await httpx.AsyncClient().get(f"{sup.base_url}/health")).status_code == 200
            assert [pid for pid, _ in descendants(first["pid"])] == [first["engine_pid"]]

            await asyncio.sleep(WATCH_EVERY_S * 1.5)  # the watchdog has seen the engine process
            os.kill(first["pid"], signal.SIGKILL)  # the server crashes, its engine process stays
            await wait_for(lambda: len(starts(record)) == 2 and sup.state is WorkerState.READY)
            second = starts(record)[1]
            assert sup.restarts == 1 and sup.status().pid == second["pid"] != first["pid"]
            assert second["key"] == sup.api_key
            assert not alive(first["engine_pid"])  # killed: it held the log pipe (and exit unseen)
        finally:
            stopping = time.monotonic()
            await sup.stop()
        # At once: a left-behind engine process holding the log pipe does not make the stop wait.
        assert time.monotonic() - stopping < 5
        assert sup.state is WorkerState.STOPPED and sup._key_dir is None
        await wait_for(lambda: not alive(second["pid"]) and not alive(second["engine_pid"]), 15)

    asyncio.run(run())


def test_a_python_without_vllm_is_reported_and_retried(stand_in, tmp_path, monkeypatch):
    model_dir, record = stand_in
    monkeypatch.delenv("PYTHONPATH")  # this Python has no vLLM then
    spec = ModelSpec(name="big", engine="vllm", vllm={"model": str(model_dir)})

    async def run() -> None:
        sup = VLLMSupervisor(spec)
        sup.start()
        try:
            await wait_for(lambda: sup.state is WorkerState.DOWN, 60)
            assert "`" + f"{spec.vllm.python or os.sys.executable} -c 'import vllm'` failed with" in sup.last_error
            assert "No module named 'vllm'" in sup.last_error
            await wait_for(lambda: sup.restarts >= 1, 30)  # tried again with backoff (vLLM may be installed)
            assert starts(record) == []
        finally:
            await sup.stop()

    asyncio.run(run())
