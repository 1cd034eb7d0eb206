"""Observability: Prometheus /metrics, X-Request-ID, JSON logs, optional OpenTelemetry export."""

import importlib.util
import json
import logging
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from server_process import DEFAULT_MODEL, default_model_entry

KEY = "sk-observability-test-0123456789"
MESSAGES = [{"role": "user", "content": "Say hello."}]
CHAT = "/v1/chat/completions"


@pytest.fixture(scope="module")
def keyed(start_server):
    return start_server(models=[default_model_entry(parallel=2, max_queue=4)], env={"PLATEFORME_API_KEY": KEY})


def scrape(server) -> dict:
    """{(sample name, frozenset(labels)): value} of the server's /metrics."""
    r = httpx.get(f"{server.url}/metrics", headers=server.headers, timeout=30)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain")
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(r.text) for s in family.samples}


def value(samples: dict, name: str, **labels) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def stream_chat(server, **extra) -> tuple[httpx.Headers, dict]:
    usage = None
    with httpx.stream("POST", server.url + CHAT, headers={**server.headers, **extra}, timeout=120, json={
            "model": DEFAULT_MODEL, "messages": MESSAGES, "max_tokens": 8, "temperature": 0, "stream": True}) as r:
        assert r.status_code == 200
        for line in r.iter_lines():
            if line.startswith("data: {"):
                usage = json.loads(line[6:]).get("usage") or usage
        return r.headers, usage


def test_metrics_count_requests_tokens_ttft_and_workers(keyed):
    before = scrape(keyed)
    # A body sent as curl sends it (no JSON content type): inner middleware rewrites the scope.
    r = httpx.post(keyed.url + CHAT, headers={**keyed.headers, "content-type": "application/x-www-form-urlencoded"},
                   timeout=120, content=json.dumps({"model": DEFAULT_MODEL, "messages": MESSAGES, "max_tokens": 8,
                                                    "temperature": 0}))
    assert r.status_code == 200
    usage1 = r.json()["usage"]
    _, usage2 = stream_chat(keyed)
    assert usage2 and usage2["completion_tokens"] > 0
    missing = "3fa85f64-5717-4562-b3fc-2c963f66afa6"
    assert httpx.get(f"{keyed.url}/v1/files/{missing}", headers=keyed.headers, timeout=30).status_code == 404
    assert httpx.get(f"{keyed.url}/no/such/{missing}", headers=keyed.headers, timeout=30).status_code == 404
    after = scrape(keyed)

    def delta(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("plateforme_requests_total", route=CHAT, method="POST", status="200") == 2
    assert delta("plateforme_requests_total", route="/v1/files/{file_id}", method="GET", status="404") == 1
    assert delta("plateforme_requests_total", route="<unmatched>", method="GET", status="404") == 1
    assert not any(missing in dict(labels).get("route", "") for _, labels in after)  # raw paths never labels
    assert delta("plateforme_request_duration_seconds_count", route=CHAT, method="POST") == 2
    assert delta("plateforme_request_duration_seconds_sum", route=CHAT, method="POST") > 0
    assert delta("plateforme_tokens_total", model=DEFAULT_MODEL, direction="input") == (
        usage1["prompt_tokens"] + usage2["prompt_tokens"])
    assert delta("plateforme_tokens_total", model=DEFAULT_MODEL, direction="output") == (
        usage1["completion_tokens"] + usage2["completion_tokens"])
    assert delta("plateforme_time_to_first_token_seconds_count", model=DEFAULT_MODEL) == 1  # the stream only
    assert 0 < delta("plateforme_time_to_first_token_seconds_sum", model=DEFAULT_MODEL) < 60
    assert value(after, "plateforme_queue_depth", model=DEFAULT_MODEL) == 0
    assert value(after, "plateforme_requests_running", model=DEFAULT_MODEL) == 0
    assert value(after, "plateforme_worker_up", model=DEFAULT_MODEL) == 1
    assert value(after, "plateforme_worker_state", model=DEFAULT_MODEL, state="ready") == 1
    assert ("plateforme_worker_restarts_total", frozenset({("model", DEFAULT_MODEL)})) in after


def test_metrics_need_a_key_unless_public(keyed, start_server):
    r = httpx.get(f"{keyed.url}/metrics", timeout=30)
    assert r.status_code == 401 and r.headers["x-request-id"].startswith("req_")
    public = start_server(models=[default_model_entry(parallel=1, max_queue=0)],
                          env={"PLATEFORME_API_KEY": KEY, "PLATEFORME_METRICS_PUBLIC": "true"})
    r = httpx.get(f"{public.url}/metrics", timeout=30)
    assert r.status_code == 200 and "plateforme_worker_up" in r.text
    assert httpx.get(f"{public.url}/v1/models", timeout=30).status_code == 401  # only /metrics is open


def test_request_id_on_every_response_and_echoed(keyed):
    ids = set()
    for method, path, kwargs in [("GET", "/v1/models", {"headers": keyed.headers}),
                                 ("GET", "/v1/models", {}),  # 401
                                 ("POST", CHAT, {"headers": keyed.headers, "json": {"model": DEFAULT_MODEL}}),  # 422
                                 ("GET", "/nowhere", {"headers": keyed.headers})]:  # 404
        r = httpx.request(method, keyed.url + path, timeout=60, **kwargs)
        rid = r.headers.get("x-request-id", "")
        assert rid.startswith("req_") and len(rid) > 10, (path, r.status_code)
        assert r.headers.get_list("x-request-id") == [rid]
        ids.add(rid)
    assert len(ids) == 4
    mine = {**keyed.headers, "X-Request-ID": "client-abc.123"}
    assert httpx.get(keyed.url + "/v1/models", headers=mine, timeout=30).headers["x-request-id"] == "client-abc.123"
    headers, _ = stream_chat(keyed, **{"X-Request-ID": "client-stream-1"})
    assert headers["x-request-id"] == "client-stream-1"
    bad = {**keyed.headers, "X-Request-ID": "x" * 300}  # too long: replaced, never reflected
    assert httpx.get(keyed.url + "/v1/models", headers=bad, timeout=30).headers["x-request-id"].startswith("req_")


def test_json_logs_carry_the_request_id_and_never_the_key(keyed):
    rid = "log-check-42"
    r = httpx.post(keyed.url + CHAT, headers={**keyed.headers, "X-Request-ID": rid}, timeout=120,
                   json={"model": DEFAULT_MODEL, "messages": MESSAGES, "max_tokens": 4})
    assert r.status_code == 200
    text = ""
    for _ in range(50):  # the access line is written as the response ends
        text = keyed.log_path.read_text()
        if f'"request_id":"{rid}"' in text:
            break
        time.sleep(0.1)
    assert KEY not in text
    lines = [line for line in text.splitlines() if line.strip()]
    records = [json.loads(line) for line in lines if line.startswith("{")]
    assert len(records) >= 0.9 * len(lines)  # every line of ours is JSON
    assert all({"ts", "level", "logger", "message"} <= rec.keys() for rec in records)
    access = [rec for rec in records if rec.get("request_id") == rid and rec["logger"] == "plateforme.access"]
    assert len(access) == 1
    assert access[0] | {"duration_ms": 0} == access[0] | {
        "method": "POST", "route": CHAT, "status": 200, "duration_ms": 0, "workspace": access[0]["workspace"]}
    assert access[0]["duration_ms"] > 0 and access[0]["workspace"]
    assert any(rec["logger"].startswith("uvicorn") for rec in records)  # uvicorn's own lines are JSON too


def test_formatters_and_request_id_parsing():
    from plateforme.observability.context import RequestContext, accepted_request_id, enter, leave
    from plateforme.observability.logging import JSONFormatter, TextFormatter

    assert accepted_request_id(b"abc-1.2:3_x") == "abc-1.2:3_x"
    for bad in (b"", b"has space", b"\xff", b"-leading", b"x" * 129, b"a\nb"):
        assert accepted_request_id(bad) is None
    record = logging.LogRecord("plateforme.test", logging.INFO, __file__, 1, "hello %s", ("world",), None)
    record.model = "m"
    token = enter(RequestContext("req_1", 0.0))
    try:
        line = JSONFormatter().format(record)
        text = TextFormatter().format(record)
    finally:
        leave(token)
    out = json.loads(line)
    assert (out["message"], out["request_id"], out["model"], out["level"]) == ("hello world", "req_1", "m", "INFO")
    assert text.endswith("plateforme.test: hello world [req_1]")


def test_two_apps_in_one_process_have_separate_metrics(tmp_path):
    from plateforme.api.app import create_app
    from plateforme.models.registry import ModelRegistry
    from plateforme.observability import observe_tokens
    from plateforme.settings import Settings

    apps = [create_app(Settings(data_dir=tmp_path / str(i), no_auth=True), ModelRegistry.from_file(None))
            for i in range(2)]
    observe_tokens(apps[0], DEFAULT_MODEL, 3, 4)
    observe_tokens(apps[0].state, "no-such-model", 1, 1)
    first, second = (app.state.metrics.render()[0].decode() for app in apps)
    assert f'direction="output",model="{DEFAULT_MODEL}"}} 4.0' in first
    assert 'model="<other>"' in first and "no-such-model" not in first
    assert "plateforme_tokens_total{" not in second


def test_tracing_needs_the_otel_packages(tmp_path, monkeypatch):
    import sys

    from fastapi import FastAPI

    from plateforme.observability.tracing import install_tracing, traces_url

    assert traces_url("http://c:4318/") == "http://c:4318/v1/traces"
    assert traces_url("http://c:4318/v1/traces") == "http://c:4318/v1/traces"
    install_tracing(FastAPI(), None)  # off: nothing imported, nothing sent
    monkeypatch.setitem(sys.modules, "opentelemetry.sdk.trace", None)
    with pytest.raises(SystemExit, match=r"pip install 'plateforme\[otel\]'"):
        install_tracing(FastAPI(), "http://127.0.0.1:9")


class _Collector(BaseHTTPRequestHandler):
    posts: list = []

    def do_POST(self):  # noqa: N802
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        type(self).posts.append((self.path, self.headers.get("content-type"), body))
        self.send_response(200)
        self.send_header("content-type", "application/x-protobuf")
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.mark.skipif(not all(importlib.util.find_spec(m) for m in (
    "opentelemetry.sdk", "opentelemetry.exporter.otlp.proto.http", "opentelemetry.instrumentation.fastapi")),
    reason="OpenTelemetry packages not installed (pip install 'plateforme[otel]')")
def test_spans_are_exported_over_otlp_http_when_configured(start_server):
    _Collector.posts = []
    collector = ThreadingHTTPServer(("127.0.0.1", 0), _Collector)
    threading.Thread(target=collector.serve_forever, daemon=True).start()
    try:
        server = start_server(models=[default_model_entry(parallel=1, max_queue=0)], env={
            "PLATEFORME_API_KEY": KEY, "OTEL_BSP_SCHEDULE_DELAY": "200",
            "PLATEFORME_OTEL_ENDPOINT": f"http://127.0.0.1:{collector.server_address[1]}"})
        r = httpx.get(f"{server.url}/v1/models", headers=server.headers, timeout=30)
        assert r.status_code == 200
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not any(
                p == "/v1/traces" and b"/v1/models" in body for p, _, body in _Collector.posts):
            time.sleep(0.1)
        traces = [(ctype, body) for path, ctype, body in _Collector.posts if path == "/v1/traces"]
        assert traces, _Collector.posts
        assert traces[0][0] == "application/x-protobuf" and b"/v1/models" in b"".join(b for _, b in traces)
    finally:
        collector.shutdown()
