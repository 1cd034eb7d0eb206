"""/health and /metrics on a live server with a fine-tune: every worker process is reported (the
adapter host too), a burst of checks runs one generation, a full queue is busy and not down, and
only admin keys see worker details.

The fine-tune is a random adapter recorded in the server's database before it starts (no training).
"""

import concurrent.futures as cf
import os
import signal
import threading
import time

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from random_adapters import write_random_adapter
from server_process import DEFAULT_MODEL, default_model_entry

from plateforme.fine_tuning.fine_tuned_models import FineTunedModels, fine_tuned_model_id
from plateforme.models.registry import ModelRegistry
from plateforme.storage.database import default_url, open_database
from plateforme.tenancy.principal import DEV_WORKSPACE
from plateforme.tenancy.workspace_bootstrap import ensure_workspace

KEY = "sk-hardening-health-0123456789"
ADMIN = {"Authorization": f"Bearer {KEY}"}
FT_MODEL = fine_tuned_model_id(DEFAULT_MODEL, "probe", "0badc0de-0000-4000-8000-000000000000")
FT_HOST = f"ft:{DEFAULT_MODEL}"
CACHE_S = 4.0
ASK = [{"role": "user", "content": "Say hello."}]
LONG = [{"role": "user", "content": "Count from 1 to 1000, one number per line."}]


@pytest.fixture(scope="module")
def ft_server(start_server, tmp_path_factory):
    data = tmp_path_factory.mktemp("ft-health") / "data"
    db = open_database(default_url(data))
    ensure_workspace(db)
    base = ModelRegistry.from_file(None).get(DEFAULT_MODEL).weights_path()
    adapter = write_random_adapter(base, data.parent / "adapter.gguf", seed=7, rank=4)
    FineTunedModels(db, data).create(FT_MODEL, DEV_WORKSPACE, "0badc0de-0000-4000-8000-000000000000",
                                     DEFAULT_MODEL, adapter)
    db.dispose()
    server = start_server(models=[default_model_entry(parallel=1, max_queue=1, threads=1)], env={
        "PLATEFORME_DATA_DIR": str(data), "PLATEFORME_API_KEY": KEY, "PLATEFORME_HEALTH_CACHE_S": str(CACHE_S),
        "PLATEFORME_HEALTH_PROBE_TIMEOUT": "10"})  # one token, even on a loaded CI machine
    server.wait_healthy()
    return server


def health(server, headers=ADMIN, timeout: float = 30) -> httpx.Response:
    return httpx.get(f"{server.url}/health", headers=headers, timeout=timeout)


def by_model(response: httpx.Response) -> dict:
    return {m["model"]: m for m in response.json()["models"]}


def scrape(server) -> dict:
    text = httpx.get(f"{server.url}/metrics", headers=ADMIN, timeout=30).text
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def probes(samples: dict, model: str) -> float:
    return samples.get(("plateforme_health_probes_total", frozenset({("model", model)})), 0.0)


def chat(server, model: str, headers=ADMIN, max_tokens: int = 4) -> httpx.Response:
    return httpx.post(f"{server.url}/v1/chat/completions", headers=headers, timeout=120,
                      json={"model": model, "messages": ASK, "max_tokens": max_tokens, "temperature": 0})


def test_a_burst_of_health_checks_runs_one_generation_per_worker(ft_server):
    time.sleep(CACHE_S + 0.5)  # the latest probe is stale: the burst must probe again, once
    before = scrape(ft_server)
    with cf.ThreadPoolExecutor(24) as pool:
        answers = list(pool.map(lambda _: health(ft_server), range(24)))
    assert [r.status_code for r in answers] == [200] * 24
    after = scrape(ft_server)
    for model in (DEFAULT_MODEL, FT_HOST):
        assert probes(after, model) - probes(before, model) == 1, model
    reports = by_model(answers[0])
    assert set(reports) == {DEFAULT_MODEL, FT_HOST}
    assert reports[FT_HOST]["ok"] is True and isinstance(reports[FT_HOST]["pid"], int)
    assert reports[FT_HOST]["pid"] != reports[DEFAULT_MODEL]["pid"]
    assert after[("plateforme_worker_up", frozenset({("model", FT_HOST)}))] == 1.0


def test_worker_details_are_for_admin_keys_only(ft_server):
    with httpx.Client(base_url=ft_server.url, headers=ADMIN, timeout=60) as admin:
        user = admin.post(f"/v1/admin/workspaces/{DEV_WORKSPACE}/users", json={"email": "member@health.example"})
        assert user.status_code == 200, user.text
        key = admin.post("/v1/admin/keys", json={"user_id": user.json()["id"], "name": "member"}).json()["key"]
    member = {"Authorization": f"Bearer {key}"}
    r = health(ft_server, member)
    assert r.status_code == 200 and r.json()["status"] == "ok"
    assert r.json()["models"] == [{"model": DEFAULT_MODEL, "ok": True}, {"model": FT_HOST, "ok": True}]
    assert all("pid" in m and "in_flight" in m for m in health(ft_server).json()["models"])


def test_a_killed_adapter_worker_is_reported_down_then_back(ft_server):
    assert chat(ft_server, FT_MODEL).status_code == 200
    pid = by_model(health(ft_server))[FT_HOST]["pid"]
    os.kill(pid, signal.SIGKILL)
    deadline, down = time.monotonic() + 30, None
    while down is None and time.monotonic() < deadline:
        r = health(ft_server)
        if r.status_code == 503:
            down = r
        time.sleep(0.05)
    assert down is not None, "/health never reported the dead adapter worker"
    assert down.json()["status"] == "unavailable" and down.headers["retry-after"]
    reports = by_model(down)
    assert reports[FT_HOST]["ok"] is False and reports[DEFAULT_MODEL]["ok"] is True

    ft_server.wait_healthy(timeout=120)
    report = by_model(health(ft_server))[FT_HOST]
    assert report["ok"] is True and report["pid"] != pid and report["restarts"] == 1
    assert scrape(ft_server)[("plateforme_worker_restarts_total", frozenset({("model", FT_HOST)}))] == 1.0
    assert chat(ft_server, FT_MODEL).status_code == 200


def test_health_under_a_full_queue_says_busy_not_down(ft_server):
    started = threading.Event()

    def long_stream():
        with httpx.stream("POST", f"{ft_server.url}/v1/chat/completions", headers=ADMIN, timeout=120, json={
                "model": DEFAULT_MODEL, "messages": LONG, "max_tokens": 1500, "temperature": 0,
                "stream": True}) as r:
            for line in r.iter_lines():
                if line.startswith("data: {"):
                    started.set()
                if stop.is_set():
                    return

    stop = threading.Event()
    time.sleep(CACHE_S + 0.2)  # no fresh probe result to fall back on
    with cf.ThreadPoolExecutor(2) as pool:
        streaming = pool.submit(long_stream)
        assert started.wait(60) or streaming.result(), "the long stream did not start"
        queued = pool.submit(chat, ft_server, DEFAULT_MODEL)  # waits for the only slot
        deadline = time.monotonic() + 30
        while scrape(ft_server).get(("plateforme_queue_depth", frozenset({("model", DEFAULT_MODEL)}))) != 1:
            assert time.monotonic() < deadline, "the second request was never queued"
            time.sleep(0.05)
        asked = time.monotonic()
        r = health(ft_server, timeout=20)
        took = time.monotonic() - asked
        stop.set()
        assert r.status_code == 200, r.text
        report = by_model(r)[DEFAULT_MODEL]
        assert report["ok"] is True and report["busy"] is True and report["queued"] == 1
        assert took < 2.0, f"/health waited {took:.1f}s behind the users"
        streaming.result(timeout=120)
        assert queued.result(timeout=120).status_code == 200
