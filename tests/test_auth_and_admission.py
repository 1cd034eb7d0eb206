"""API key authentication, and fast 503 + Retry-After when a worker's queue is full."""

import re
import threading
import time

import httpx
import pytest
from mistralai.client import Mistral
from server_process import DEFAULT_MODEL, default_model_entry

KEY = "test-key-0123456789"
USER = [{"role": "user", "content": "Say hello."}]


@pytest.fixture(scope="module")
def keyed_server(start_server):
    # One slot and no queue: a second concurrent request must be refused at once.
    return start_server(models=[default_model_entry(parallel=1, max_queue=0)],
                        env={"PLATEFORME_API_KEY": KEY})


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": KEY},
                                     {"Authorization": f"Basic {KEY}"}])
@pytest.mark.parametrize("method, path", [("GET", "/v1/models"), ("POST", "/v1/chat/completions"),
                                          ("GET", "/health"), ("GET", f"/v1/models/{DEFAULT_MODEL}")])
def test_requests_without_the_key_get_401(keyed_server, headers, method, path):
    r = httpx.request(method, keyed_server.url + path, headers=headers, timeout=30,
                      json={"model": DEFAULT_MODEL, "messages": USER} if method == "POST" else None)
    assert r.status_code == 401
    body = r.json()
    assert body["object"] == "error" and body["code"] == "401"
    assert KEY not in r.text


def test_sdk_with_the_key_works(keyed_server):
    client = Mistral(api_key=KEY, server_url=keyed_server.url)
    response = client.chat.complete(model=DEFAULT_MODEL, messages=USER, max_tokens=5)
    assert response.usage.completion_tokens == 5
    assert DEFAULT_MODEL in [m.id for m in client.models.list().data]


def test_full_queue_gets_503_with_retry_after_at_once(keyed_server):
    headers = {"Authorization": f"Bearer {KEY}"}
    busy = threading.Event()
    done = threading.Event()

    def long_stream():
        payload = {"model": DEFAULT_MODEL, "messages": USER, "max_tokens": 400, "stream": True,
                   "temperature": 0}
        with httpx.stream("POST", f"{keyed_server.url}/v1/chat/completions", json=payload,
                          headers=headers, timeout=120) as r:
            for _ in r.iter_lines():
                busy.set()
        done.set()

    thread = threading.Thread(target=long_stream)
    thread.start()
    try:
        assert busy.wait(30)
        started = time.monotonic()
        r = httpx.post(f"{keyed_server.url}/v1/chat/completions", headers=headers, timeout=30,
                       json={"model": DEFAULT_MODEL, "messages": USER, "max_tokens": 5})
        elapsed = time.monotonic() - started
        assert r.status_code == 503, r.text
        assert int(r.headers["retry-after"]) >= 1
        assert r.json()["object"] == "error" and "queue" in r.json()["message"]
        assert elapsed < 2, "a full queue must be answered at once, not after a wait"
    finally:
        thread.join(120)
    assert done.is_set()
    r = httpx.post(f"{keyed_server.url}/v1/chat/completions", headers=headers, timeout=60,
                   json={"model": DEFAULT_MODEL, "messages": USER, "max_tokens": 5})
    assert r.status_code == 200


def test_every_route_needs_a_key_by_default(start_server, tmp_path):
    """A server started without --no-auth and without any key configured: every route it has
    (listed from the app itself, so new routes are covered) answers 401 without a key."""
    from fastapi.routing import APIRoute

    from plateforme.api.app import create_app
    from plateforme.models.registry import ModelRegistry
    from plateforme.settings import Settings

    server = start_server(models=[default_model_entry(parallel=1, max_queue=0)], env={"PLATEFORME_NO_AUTH": "0"})
    app = create_app(Settings(data_dir=tmp_path), ModelRegistry.from_file(None))

    def flatten(routes):
        for r in routes:
            inner = getattr(r, "original_router", None)  # routers included into the app
            yield from flatten(inner.routes) if inner is not None else [r]

    routes = [(m, r.path) for r in flatten(app.routes) if isinstance(r, APIRoute)
              for m in sorted(r.methods) if m != "HEAD"]
    assert len(routes) > 20
    for method, path in routes:
        url = server.url + path.replace("{", "").replace("}", "")  # any value for path parameters
        r = httpx.request(method, url, timeout=30)
        signed = path.endswith(("/signed-content", "/signed-text"))
        expected = 403 if signed else 401  # a signed link's signature is its key
        if signed:
            some_id = re.sub(r"\{[a-z_]+\}", "3fa85f64-5717-4562-b3fc-2c963f66afa6", path)
            r = httpx.request(method, server.url + some_id,
                              params={"expires": 9999999999, "signature": "0" * 64}, timeout=30)
        assert r.status_code == expected, (method, path, r.status_code, r.text[:200])
    assert "plateforme admin bootstrap" in server.log()


def test_no_auth_mode_warns(start_server):
    server = start_server(models=[default_model_entry(parallel=1, max_queue=0)], env={"PLATEFORME_NO_AUTH": "1"})
    assert httpx.get(f"{server.url}/v1/models", timeout=30).status_code == 200
    assert "--no-auth" in server.log() and "development only" in server.log()
