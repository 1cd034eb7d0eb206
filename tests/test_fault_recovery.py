"""kill -9 on the model worker mid-stream: the client gets an error, /health says so, it recovers."""

import os
import signal
import time

import httpx
import openai
import pytest
from server_process import DEFAULT_MODEL, default_model_entry

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
