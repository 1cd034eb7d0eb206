"""kill -9 on the model worker mid-stream: the client gets an error, /health says so, it recovers;
the client of the dead worker is closed."""

import asyncio
import os
import signal
import time

import httpx
import openai
import pytest
from retired_client_checks import assert_closed_in_time
from server_process import DEFAULT_MODEL, default_model_entry

from plateforme.engines.pool import ModelWorker
from plateforme.engines.supervisor import WorkerState
from plateforme.models.registry import ModelRegistry

LONG = [{"role": "user", "content": "Count from 1 to 500, one number per line."}]


@pytest.fixture(scope="module")
def fault_server(start_server):
    return start_server(models=[default_model_entry(parallel=2, max_queue=2)])


def test_kill_worker_mid_stream_then_recover(fault_server):
    pid = fault_server.worker_pid()
    client = openai.OpenAI(api_key="unused", base_url=f"{fault_server.url}/v1", max_retries=0, timeout=60)
    stream = client.chat.completions.create(model=DEFAULT_MODEL, messages=LONG, max_tokens=1500,
                                            temperature=0, stream=True)
    received = 0
    started = time.monotonic()
    with pytest.raises(openai.APIError) as caught:
        for chunk in stream:
            received += 1
            if received == 5:
                os.kill(pid, signal.SIGKILL)
    assert received >= 5
    assert time.monotonic() - started < 30, "the client must get an error, not a hang"
    assert "generation failed" in str(caught.value)

    # /health reports the dead worker (503) while the supervisor brings a new one up.
    health = fault_server.health()
    assert health.status_code == 503
    assert health.headers.get("retry-after")
    report = health.json()["models"][0]
    assert report["ok"] is False and report["state"] in ("down", "starting")

    # Meanwhile requests are refused quickly with 503 + Retry-After, or served by the new worker.
    r = httpx.post(f"{fault_server.url}/v1/chat/completions", timeout=60,
                   json={"model": DEFAULT_MODEL, "messages": LONG, "max_tokens": 2})
    assert r.status_code in (200, 503)
    if r.status_code == 503:
        assert r.headers["retry-after"] and r.json()["object"] == "error"

    body = fault_server.wait_healthy(timeout=60)
    report = body["models"][0]
    assert report["restarts"] == 1 and report["pid"] != pid
    r = httpx.post(f"{fault_server.url}/v1/chat/completions", timeout=60,
                   json={"model": DEFAULT_MODEL, "messages": LONG, "max_tokens": 8})
    assert r.status_code == 200 and r.json()["usage"]["completion_tokens"] == 8


async def wait_restarted(supervisor, old_pid: int, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not (supervisor.state is WorkerState.READY and supervisor.pid not in (None, old_pid)):
        assert time.monotonic() < deadline, "the worker did not come back"
        await asyncio.sleep(0.1)


def test_the_client_of_a_restarted_worker_is_closed():
    spec = ModelRegistry.from_file(None).get(DEFAULT_MODEL).model_copy(update={"parallel": 1, "threads": 1})

    async def scenario():
        worker = ModelWorker(spec, start_timeout=120, engine_timeout=60)
        worker.supervisor.start()
        try:
            assert await worker.supervisor.wait_ready(120)
            old, pid = worker.client(), worker.supervisor.pid
            os.kill(pid, signal.SIGKILL)
            await wait_restarted(worker.supervisor, pid)
            new = worker.client()
            assert new is not old
            answer = await new.chat({"messages": LONG, "max_tokens": 2}, timeout=60)
            assert answer["usage"]["completion_tokens"] == 2
            await assert_closed_in_time(old, new)
        finally:
            await worker.close()
        assert new._http.is_closed

    asyncio.run(scenario())
