"""Engine `openai` with several endpoints: two standalone llama.cpp servers (replicas, each
requiring the API key) behind one plateforme gateway; one is killed during a run of 16 streams,
then restarted on its port. The logic of selection, retry and probe backoff is unit-tested in
tests/test_endpoint_set.py; this is the live check, kept to one run.
"""

import asyncio
import json
import signal
import subprocess
import sys
import time

import httpx
import pytest
from server_process import DEFAULT_MODEL, ServerProcess, free_port, wait_http_healthy

from plateforme.models.registry import ModelRegistry

KEY = "replica-secret"
MODEL = "replicated-smol"
STREAM = {"model": MODEL, "stream": True, "max_tokens": 40, "temperature": 0,
          "messages": [{"role": "user", "content": "Write a long story about a dragon who learns to cook."}]}
BOUND_S = 90  # every stream must have ended by then


class Replica:
    """One standalone llama.cpp server (the worker module run by hand) on a fixed port."""

    def __init__(self, workdir, gguf: str):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.gguf, self.workdir, self.starts = gguf, workdir, 0
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        self.starts += 1
        self.log = self.workdir / f"llama-{self.port}-{self.starts}.log"
        with open(self.log, "w") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "plateforme.engines.llamacpp_worker", "--model", self.gguf,
                 "--port", str(self.port), "--context-length", "512", "--parallel", "8", "--threads", "1",
                 "--api-key", KEY], stdout=log, stderr=subprocess.STDOUT)

    def wait(self) -> None:
        wait_http_healthy(self.url, self.proc, log=self.log)

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(20)

    def last_task(self) -> int:
        """The id of the latest task this server ran, -1 before any (llama.cpp `GET /slots`: each
        slot keeps the id of its latest task; ids grow across the server's slots)."""
        slots = httpx.get(f"{self.url}/slots", headers={"Authorization": f"Bearer {KEY}"}, timeout=10).json()
        return max((s.get("id_task", -1) for s in slots), default=-1)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("replicas")
    gguf = str(ModelRegistry.from_file(None).get(DEFAULT_MODEL).weights_path())
    replicas = [Replica(workdir, gguf), Replica(workdir, gguf)]
    entry = {"name": MODEL, "engine": "openai", "endpoints": [f"{r.url}/v1" for r in replicas],
             "api_key_env": "REPLICA_KEY", "upstream_model": DEFAULT_MODEL, "context_length": 512,
             "parallel": 16, "max_queue": 16}
    for r in replicas:
        r.start()
    gateway = ServerProcess(workdir, [entry], env={"REPLICA_KEY": KEY})
    try:
        for r in replicas:
            r.wait()
        gateway.wait_healthy()
        yield replicas, gateway
    finally:
        gateway.stop()
        for r in replicas:
            r.stop()


def endpoints_of(gateway) -> dict[str, dict]:
    model = next(m for m in gateway.health().json()["models"] if m["model"] == MODEL)
    return {e["url"]: e for e in model["endpoints"]}


async def one_stream(client: httpx.AsyncClient, first_token: asyncio.Event | None = None,
                     max_tokens: int = STREAM["max_tokens"]) -> tuple[str, str]:
    """("done", text), ("error", message) for an error event, or ("refused", body) for an HTTP error."""
    text = ""
    async with client.stream("POST", "/v1/chat/completions", json={**STREAM, "max_tokens": max_tokens}) as response:
        if response.status_code != 200:
            return "refused", (await response.aread()).decode()
        async for line in response.aiter_lines():
            if not line.startswith("data: "):
                continue
            if line == "data: [DONE]":
                return "done", text
            chunk = json.loads(line[6:])
            if chunk.get("object") == "error":
                return "error", chunk["message"]
            for choice in chunk.get("choices", []):
                text += choice["delta"].get("content") or ""
            if text and first_token is not None:
                first_token.set()
    return "cut", text  # the stream ended without [DONE] nor an error event


def test_a_replica_killed_during_16_streams_then_restarted(cluster):
    (a, b), gateway = cluster
    a_url, b_url = f"{a.url}/v1", f"{b.url}/v1"

    async def run() -> tuple[list, list, dict]:
        async with httpx.AsyncClient(base_url=gateway.url, timeout=BOUND_S) as client:
            started = [asyncio.Event() for _ in range(8)]
            first = [asyncio.create_task(one_stream(client, e)) for e in started]
            await asyncio.wait_for(asyncio.gather(*(e.wait() for e in started)), 60)
            spread = await asyncio.to_thread(endpoints_of, gateway)
            a.kill()  # mid-generation for the streams it serves
            later = [asyncio.create_task(one_stream(client)) for _ in range(8)]
            done, pending = await asyncio.wait([*first, *later], timeout=BOUND_S)
            for task in pending:
                task.cancel()
            assert not pending, f"{len(pending)} streams still open {BOUND_S}s after the kill"
            return [t.result() for t in first], [t.result() for t in later], spread

    started_at = time.monotonic()
    first, later, spread = asyncio.run(run())
    # Both replicas were serving: the least loaded endpoint takes each new stream.
    assert spread[a_url]["in_flight"] >= 3 and spread[b_url]["in_flight"] >= 3, spread
    # The streams that had not started when A died were all served (by B: A is out, or each one
    # refused by A before its first token moved to B once).
    assert [outcome for outcome, _ in later] == ["done"] * 8, later
    assert all(text for _, text in later)
    # The streams A was generating end with an error event naming the lost connection; none hangs.
    errors = [message for outcome, message in first if outcome == "error"]
    assert 1 <= len(errors) <= 5 and all(outcome in ("done", "error") for outcome, _ in first), first
    assert all("connection lost" in m or "closed the stream" in m for m in errors), errors
    assert time.monotonic() - started_at < BOUND_S
    state = endpoints_of(gateway)
    assert not state[a_url]["healthy"] and state[a_url]["last_error"], state
    assert state[b_url]["healthy"] and state[b_url]["in_flight"] == 0
    metrics = httpx.get(f"{gateway.url}/metrics", headers=gateway.headers, timeout=30).text
    assert f'plateforme_endpoint_up{{endpoint="{a_url}",model="{MODEL}"}} 0.0' in metrics, metrics
    assert f'plateforme_endpoint_up{{endpoint="{b_url}",model="{MODEL}"}} 1.0' in metrics
    assert f'plateforme_worker_up{{model="{MODEL}"}} 1.0' in metrics  # B still serves the model

    # A restarts on its port: its probe (GET /models with the key) puts it back in rotation.
    a.start()
    a.wait()
    deadline = time.monotonic() + 30
    while not endpoints_of(gateway)[a_url]["healthy"]:
        assert time.monotonic() < deadline, f"{a_url} not back in rotation: {endpoints_of(gateway)}"
        time.sleep(0.2)
    # The gateway's /health (each endpoints_of above) may itself have sent a one-token generation
    # probe to A once it was back, and awaited it: count from here, with no /health call between.
    before = a.last_task()
    for _ in range(2):  # both idle: round robin, so one of two requests is A's
        response = httpx.post(f"{gateway.url}/v1/chat/completions", timeout=60,
                              json={**STREAM, "stream": False, "max_tokens": 2})
        assert response.status_code == 200, response.text
    assert a.last_task() > before  # the restarted server itself ran one

    # Killed while idle, A is still in rotation: the stream sent there is refused before its
    # first token and moves to B once; its caller sees a normal stream.
    failures = endpoints_of(gateway)[a_url]["failures"]
    a.kill()
    for _ in range(2):  # both idle: one of two goes to A first
        outcome, text = asyncio.run(_one_stream_alone(gateway.url))
        assert outcome == "done" and text, text
    state = endpoints_of(gateway)[a_url]
    assert not state["healthy"] and "unreachable" in state["last_error"], state
    assert state["failures"] == failures + 1


async def _one_stream_alone(url: str) -> tuple[str, str]:
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
        return await one_stream(client, max_tokens=3)
