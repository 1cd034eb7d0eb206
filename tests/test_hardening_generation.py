"""Every token billed, every choice admitted, abandoned work stopped, refusals before the stream.

Live tests run on one server with real keys, two slots and a 4096-token context.
"""

import os
import signal
import threading
import time

import httpx
import pytest
from server_process import DEFAULT_MODEL, default_model_entry
from test_tenancy_api import _team

ASK = [{"role": "user", "content": "Tell me a long story about a lighthouse keeper."}]


@pytest.fixture(scope="module")
def gate(start_server):
    return start_server(models=[default_model_entry(parallel=2, max_queue=4, context_length=4096)],
                        env={"PLATEFORME_NO_AUTH": "false"})


def _bearer(key: str) -> dict:
    return {"Authorization": f"Bearer {key}"}


def _usage(server, key: str) -> dict:
    rows = httpx.get(f"{server.url}/v1/usage", params={"group_by": "model"}, headers=_bearer(key),
                     timeout=30).json()["data"]
    return rows[0] if rows else {"requests": 0, "prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}


def _wait_for(condition, timeout: float = 15.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"{what} not reached within {timeout}s")


def _metric(server, name: str) -> float:
    text = httpx.get(f"{server.url}/metrics", headers=server.headers, timeout=30).text
    line = next(line for line in text.splitlines() if line.startswith(f'{name}{{model="{DEFAULT_MODEL}"}}'))
    return float(line.rsplit(" ", 1)[1])


def _worker_port(server) -> int:
    args = open(f"/proc/{server.worker_pid()}/cmdline", "rb").read().split(b"\0")
    return int(args[args.index(b"--port") + 1])


def _engine_busy(port: int) -> bool:
    """Whether llama.cpp itself is still generating (its /slots, on the worker's own port)."""
    return any(s["is_processing"] for s in httpx.get(f"http://127.0.0.1:{port}/slots", timeout=30).json())


def test_abandoned_streams_are_billed_and_spend_the_budget(gate):
    _, key = _team(gate, "abandoner", token_budget=100, budget_period="day")
    answered = 0
    for _ in range(6):
        body = {"model": DEFAULT_MODEL, "messages": ASK, "max_tokens": 400, "stream": True}
        with httpx.stream("POST", f"{gate.url}/v1/chat/completions", json=body, headers=_bearer(key),
                          timeout=60) as r:
            if r.status_code == 429:
                break
            assert r.status_code == 200
            chunks = 0
            for line in r.iter_lines():
                chunks += line.startswith("data:")
                if chunks >= 30:
                    break  # the client goes away mid-answer
        answered += 1
        _wait_for(lambda: _usage(gate, key)["requests"] == answered, what="usage of the abandoned stream")
    # ~30 prompt + ~29 completion tokens each: the 100-token budget is spent after two streams.
    assert answered == 2
    used = _usage(gate, key)
    assert used["prompt_tokens"] > 0 and 2 * 25 <= used["completion_tokens"] < 2 * 400
    assert used["total_tokens"] >= 100
    metrics = httpx.get(f"{gate.url}/metrics", headers=gate.headers, timeout=30).text
    ended = [line for line in metrics.splitlines() if line.startswith("plateforme_generations_ended_total{")
             and 'outcome="client_gone"' in line]
    assert ended and float(ended[0].rsplit(" ", 1)[1]) >= 2  # counted as cut, not completed


def test_a_request_for_n_choices_holds_n_slots(gate):
    _, key = _team(gate, "wide")
    seen = threading.Event()
    stop = threading.Event()

    def wide_stream():
        body = {"model": DEFAULT_MODEL, "messages": ASK, "max_tokens": 3000, "min_tokens": 3000, "n": 2,
                "stream": True}
        with httpx.stream("POST", f"{gate.url}/v1/chat/completions", json=body, headers=_bearer(key),
                          timeout=120) as r:
            for _ in r.iter_lines():
                seen.set()
                if stop.is_set():
                    break

    port = _worker_port(gate)
    thread = threading.Thread(target=wide_stream)
    thread.start()
    try:
        assert seen.wait(60)
        assert _metric(gate, "plateforme_requests_running") == 2  # both slots, not one
        # Another workspace's request now waits for a slot instead of sharing the engine.
        answers: list[int] = []
        other = threading.Thread(target=lambda: answers.append(httpx.post(
            f"{gate.url}/v1/chat/completions", headers=gate.headers, timeout=300,
            json={"model": DEFAULT_MODEL, "messages": ASK, "max_tokens": 2}).status_code))
        other.start()
        _wait_for(lambda: _metric(gate, "plateforme_queue_depth") == 1, what="the other request queued")
    finally:
        stop.set()
        thread.join(60)
    # Served as soon as the two slots were free: both choices' engine generations stopped with
    # the stream (otherwise the other request waits minutes behind 2 x 3000 tokens for nobody).
    other.join(30)
    assert answers == [200]
    _wait_for(lambda: not _engine_busy(port), timeout=20, what="the engine's slots idle")
    other.join(300)


def test_a_client_that_leaves_a_non_streaming_request_stops_its_generation(gate):
    _, key = _team(gate, "leaver")
    port = _worker_port(gate)
    body = {"model": DEFAULT_MODEL, "messages": ASK, "min_tokens": 3800}  # minutes of work if not stopped
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(f"{gate.url}/v1/chat/completions", json=body, headers=_bearer(key), timeout=3)
    _wait_for(lambda: not _engine_busy(port), timeout=20, what="the engine's slots idle")
    assert _metric(gate, "plateforme_requests_running") == 0
    billed = _wait_for(lambda: _usage(gate, key)["requests"] == 1 and _usage(gate, key), what="usage")
    assert 0 < billed["completion_tokens"] < 3800  # what was generated before the client left


def test_min_tokens_beyond_the_context_is_refused(http):
    for stream in (False, True):
        r = http.post("/v1/chat/completions", json={"model": DEFAULT_MODEL, "messages": ASK, "min_tokens": 2047,
                                                    "stream": stream})
        assert r.status_code == 400, r.text
        body = r.json()
        assert body["type"] == "context_length_exceeded" and "min_tokens is 2047" in body["message"]


def test_a_streamed_prompt_beyond_the_context_is_a_400_before_any_chunk(http):
    too_long = [{"role": "user", "content": "hello " * 3000}]
    r = http.post("/v1/chat/completions", json={"model": DEFAULT_MODEL, "messages": too_long, "stream": True})
    assert r.status_code == 400 and r.headers["content-type"].startswith("application/json"), r.text
    assert r.json()["type"] == "context_length_exceeded"


def test_tool_calls_come_with_empty_content_not_none(http):
    tools = [{"type": "function", "function": {"name": "get_weather", "description": "Weather of a city",
                                                "parameters": {"type": "object", "properties": {
                                                    "city": {"type": "string"}}, "required": ["city"]}}}]
    r = http.post("/v1/chat/completions", json={
        "model": DEFAULT_MODEL, "tools": tools, "tool_choice": "any", "temperature": 0,
        "messages": [{"role": "user", "content": "What is the weather in Paris?"}]})
    assert r.status_code == 200, r.text
    message = r.json()["choices"][0]["message"]
    assert message["tool_calls"] and message["content"] == ""  # as Mistral's API answers


def test_a_stream_to_a_worker_just_killed_is_a_503_not_a_broken_200(gate):
    os.kill(gate.worker_pid(), signal.SIGKILL)
    body = {"model": DEFAULT_MODEL, "messages": ASK, "max_tokens": 5, "stream": True}
    r = httpx.post(f"{gate.url}/v1/chat/completions", json=body, headers=gate.headers, timeout=60)
    assert r.status_code == 503 and int(r.headers["Retry-After"]) >= 1, r.text[:300]
    assert r.json()["type"] == "service_unavailable"
    gate.wait_healthy(120)
