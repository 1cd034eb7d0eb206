"""Usage metering, limits (429 + Retry-After), the admin API and audit, with real keys on a live server."""

import concurrent.futures as cf
import sqlite3
import time
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import httpx
import psycopg
import pytest
from mistralai.client import Mistral
from conftest import database_env
from server_process import default_model_entry

ASK = [{"role": "user", "content": "Say hello."}]


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def platform(start_server, request):
    server = start_server(models=[default_model_entry(parallel=1, max_queue=6)],
                          env={"PLATEFORME_NO_AUTH": "false", **database_env(request, request.param)})
    return server


def _admin(server) -> httpx.Client:
    return httpx.Client(base_url=server.url, headers=server.headers, timeout=120)


def _team(server, name: str, **limits) -> tuple[str, str]:
    """A workspace (with limits) and a member key in it, made through the admin API."""
    with _admin(server) as admin:
        ws = admin.post("/v1/admin/workspaces", json={"name": name, **limits})
        assert ws.status_code == 200, ws.text
        user = admin.post(f"/v1/admin/workspaces/{ws.json()['id']}/users", json={"email": f"dev@{name}.example"})
        key = admin.post("/v1/admin/keys", json={"user_id": user.json()["id"], "name": "dev"})
        assert key.json()["prefix"] in key.json()["key"]
        return ws.json()["id"], key.json()["key"]


def test_usage_equals_what_clients_were_told(platform):
    ws, key = _team(platform, "metered")
    client = Mistral(api_key=key, server_url=platform.url)
    told = [client.chat.complete(model="smollm2-135m-instruct", messages=ASK, max_tokens=8).usage]
    stream = list(client.chat.stream(model="smollm2-135m-instruct", messages=ASK, max_tokens=8))
    told.append(stream[-1].data.usage)
    h = {"Authorization": f"Bearer {key}"}
    by_model = httpx.get(f"{platform.url}/v1/usage", params={"group_by": "model"}, headers=h).json()["data"]
    assert by_model == [{"model": "smollm2-135m-instruct", "requests": 2,
                         "prompt_tokens": sum(u.prompt_tokens for u in told),
                         "completion_tokens": sum(u.completion_tokens for u in told),
                         "total_tokens": sum(u.total_tokens for u in told),
                         "blocked_requests": 0, "guardrail_tokens": 0}]  # no guardrails asked for, none blocked
    by_day = httpx.get(f"{platform.url}/v1/usage", headers=h).json()["data"]
    assert len(by_day) == 1 and by_day[0]["total_tokens"] == by_model[0]["total_tokens"]
    everyone = httpx.get(f"{platform.url}/v1/admin/usage", headers=platform.headers).json()["data"]
    assert {"workspace_id": ws, **by_day[0]} in everyone
    assert httpx.get(f"{platform.url}/v1/admin/usage", headers=h).status_code == 403
    other_ws, other_key = _team(platform, "unmetered")
    assert httpx.get(f"{platform.url}/v1/usage", headers={"Authorization": f"Bearer {other_key}"}).json()["data"] == []
    cli = platform.admin("usage", "--workspace", "metered", "--by", "model")
    assert str(by_model[0]["total_tokens"]) in cli


def _chat(server, key, **extra) -> httpx.Response:
    return httpx.post(f"{server.url}/v1/chat/completions", headers={"Authorization": f"Bearer {key}"}, timeout=120,
                      json={"model": "smollm2-135m-instruct", "messages": ASK, "max_tokens": 4, **extra})


def test_requests_per_minute_limit(platform):
    _, key = _team(platform, "slow-lane", requests_per_minute=2)
    assert [_chat(platform, key).status_code for _ in range(2)] == [200, 200]
    r = _chat(platform, key)
    assert r.status_code == 429 and r.json()["type"] == "rate_limited"
    assert 1 <= int(r.headers["Retry-After"]) <= 61


def test_limits_changed_by_an_admin_apply_at_once(platform):
    ws, key = _team(platform, "retuned")
    assert [_chat(platform, key).status_code for _ in range(2)] == [200, 200]  # unlimited, and now cached
    with _admin(platform) as admin:
        assert admin.patch(f"/v1/admin/workspaces/{ws}", json={"requests_per_minute": 2}).status_code == 200
    assert _chat(platform, key).status_code == 429


def test_tokens_per_minute_limit_on_a_key(platform):
    ws, _ = _team(platform, "tpm-team")
    with _admin(platform) as admin:
        user = admin.post(f"/v1/admin/workspaces/{ws}/users", json={"email": "tpm@x.example"}).json()
        key = admin.post("/v1/admin/keys", json={"user_id": user["id"], "tokens_per_minute": 10}).json()["key"]
    assert _chat(platform, key).status_code == 200  # uses more than 10 tokens
    r = _chat(platform, key)
    assert r.status_code == 429 and "tokens per minute" in r.json()["message"]


def test_token_budget_per_period(platform):
    _, key = _team(platform, "budgeted", token_budget=5, budget_period="day")
    assert _chat(platform, key).status_code == 200
    r = _chat(platform, key)
    assert r.status_code == 429 and "budget" in r.json()["message"]
    assert int(r.headers["Retry-After"]) <= 86400


def test_admin_routes_need_an_admin_and_are_audited(platform):
    ws, member_key = _team(platform, "audited")
    member = {"Authorization": f"Bearer {member_key}"}
    for method, path in [("GET", "/v1/admin/workspaces"), ("POST", "/v1/admin/keys"), ("GET", "/v1/admin/audit")]:
        assert httpx.request(method, platform.url + path, headers=member, json={}).status_code == 403
    with _admin(platform) as admin:
        keys = admin.get("/v1/admin/keys", params={"workspace_id": ws}).json()["data"]
        assert keys and all("key" not in k and k["workspace_id"] == ws for k in keys)  # never shown again
        assert admin.delete(f"/v1/admin/keys/{keys[0]['id']}").json()["revoked"] is True
        assert admin.post("/v1/admin/workspaces", json={"name": "audited"}).status_code == 409
        assert admin.post("/v1/admin/workspaces", json={"name": "x", "bogus": 1}).status_code == 422
        events = admin.get("/v1/admin/audit", params={"workspace_id": ws}).json()["data"]
    actions = [e["action"] for e in events]
    assert {"workspace.create", "user.create", "key.create", "key.revoke"} <= set(actions)
    assert all(e["address"] == "127.0.0.1" for e in events if e["action"] == "key.revoke")
    time.sleep(2.5)  # key lookups are cached for 2 s
    assert httpx.get(f"{platform.url}/v1/models", headers=member).status_code == 401


def test_a_flooding_workspace_does_not_starve_another(platform):
    """One slot, a queue of 6: a workspace sends 10 requests at once; another's single request,
    sent just after, is served next (not after the flood) and is never refused."""
    _, flood_key = _team(platform, "flood")
    _, calm_key = _team(platform, "calm")
    with cf.ThreadPoolExecutor(12) as pool:
        flood = [pool.submit(_chat, platform, flood_key, max_tokens=40, min_tokens=40) for _ in range(10)]
        time.sleep(1.0)
        started = time.monotonic()
        calm = pool.submit(_chat, platform, calm_key, max_tokens=40, min_tokens=40)
        calm_done = calm.result().status_code, time.monotonic() - started
        flood_codes = [f.result().status_code for f in flood]
        flood_last = time.monotonic() - started
    assert calm_done[0] == 200
    assert set(flood_codes) <= {200, 503} and flood_codes.count(200) >= 6
    # Served right after the running request: well before the queued flood is through.
    assert calm_done[1] < flood_last / 2, (calm_done, flood_last)


INT32, INT64 = 2 ** 31 - 1, 2 ** 63 - 1  # the INTEGER and BIGINT columns these fields are stored in


def test_admin_integers_beyond_their_column_get_422(platform):
    ws, _ = _team(platform, "bounded")
    with _admin(platform) as admin:
        user = admin.post(f"/v1/admin/workspaces/{ws}/users", json={"email": "big@x.example"}).json()
        too_big = [("POST", "/v1/admin/workspaces", {"name": "huge"}, "requests_per_minute", INT32),
                   ("POST", "/v1/admin/workspaces", {"name": "huge"}, "tokens_per_minute", INT32),
                   ("POST", "/v1/admin/workspaces", {"name": "huge"}, "token_budget", INT64),
                   ("PATCH", f"/v1/admin/workspaces/{ws}", {}, "requests_per_minute", INT32),
                   ("PATCH", f"/v1/admin/workspaces/{ws}", {}, "tokens_per_minute", INT32),
                   ("PATCH", f"/v1/admin/workspaces/{ws}", {}, "token_budget", INT64),
                   ("POST", "/v1/admin/keys", {"user_id": user["id"]}, "requests_per_minute", INT32),
                   ("POST", "/v1/admin/keys", {"user_id": user["id"]}, "tokens_per_minute", INT32)]
        for method, path, body, field, highest in too_big:
            for value in (highest + 1, 10 ** 30):
                r = admin.request(method, path, json={**body, field: value})
                assert r.status_code == 422, (method, path, field, value, r.text)
                error = r.json()
                assert error["object"] == "error" and error["param"] == field and str(highest) in error["message"]
        r = admin.patch(f"/v1/admin/workspaces/{ws}", json={"requests_per_minute": INT32, "tokens_per_minute": INT32,
                                                           "token_budget": INT64})
        assert r.status_code == 200, r.text  # the largest values fit
        assert (r.json()["requests_per_minute"], r.json()["token_budget"]) == (INT32, INT64)
        listed = {w["id"]: w for w in admin.get("/v1/admin/workspaces").json()["data"]}[ws]
        assert (listed["tokens_per_minute"], listed["token_budget"]) == (INT32, INT64)
        key = admin.post("/v1/admin/keys", json={"user_id": user["id"], "requests_per_minute": INT32})
        assert key.status_code == 200 and key.json()["requests_per_minute"] == INT32


def test_key_expires_at_with_an_offset_means_that_instant(platform):
    ws, _ = _team(platform, "zoned")
    in_an_hour = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=1)
    with _admin(platform) as admin:
        user = admin.post(f"/v1/admin/workspaces/{ws}/users", json={"email": "tz@x.example"}).json()
        made = {}
        for label, sent in [("west", in_an_hour.astimezone(timezone(timedelta(hours=-5))).isoformat()),
                            ("east", in_an_hour.astimezone(timezone(timedelta(hours=5))).isoformat()),
                            ("naive", in_an_hour.replace(tzinfo=None).isoformat())]:  # no offset: UTC
            r = admin.post("/v1/admin/keys", json={"user_id": user["id"], "name": label, "expires_at": sent})
            assert r.status_code == 200, r.text
            assert r.json()["expires_at"] == int(in_an_hour.timestamp()), label
            made[r.json()["id"]] = r.json()["key"]
        listed = admin.get("/v1/admin/keys", params={"workspace_id": ws}).json()["data"]
        assert {k["id"]: k["expires_at"] for k in listed if k["id"] in made} == dict.fromkeys(made,
                                                                                        int(in_an_hour.timestamp()))
        gone = (datetime.now(UTC) - timedelta(seconds=2)).astimezone(timezone(timedelta(hours=5))).isoformat()
        assert admin.post("/v1/admin/keys", json={"user_id": user["id"], "expires_at": gone}).status_code == 400
        r = admin.post("/v1/admin/keys", json={"user_id": user["id"], "expires_at": "9999-12-31T23:00:00-05:00"})
        assert r.status_code == 422 and r.json()["object"] == "error"
    for key in made.values():  # none taken as already expired (the -05:00 one was, on SQLite)
        assert httpx.get(f"{platform.url}/v1/models", headers={"Authorization": f"Bearer {key}"}).status_code == 200


@contextmanager
def _audit_log_locked(server):
    """Hold the audit table so that writing an event waits (reads go on): SQLite's write lock (readers are
    not blocked in WAL mode), or PostgreSQL's EXCLUSIVE lock on audit_events alone."""
    url = server.env.get("PLATEFORME_DATABASE_URL")
    if url is None:
        conn = sqlite3.connect(Path(server.env["PLATEFORME_DATA_DIR"]) / "plateforme.db", isolation_level=None)
        conn.execute("BEGIN IMMEDIATE")
    else:
        conn = psycopg.connect(url)
        conn.execute("LOCK TABLE audit_events IN EXCLUSIVE MODE")
    try:
        yield
    finally:
        conn.rollback()
        conn.close()


def test_audit_writes_do_not_block_the_event_loop(platform):
    """While an audit write waits on the database, the server keeps answering other requests; the audited
    requests answer only once their event is written."""
    ws, key = _team(platform, "audited-io")
    member = {"Authorization": f"Bearer {key}"}
    up = httpx.post(f"{platform.url}/v1/files", headers=member, files={"file": ("a.jsonl", b'{"a": 1}\n')}).json()
    signed = httpx.get(f"{platform.url}/v1/files/{up['id']}/url", headers=member).json()["url"]
    assert httpx.get(f"{platform.url}/v1/models", headers=member).status_code == 200  # the key is cached now
    audited = [("GET", f"/v1/files/{up['id']}/content", member, None), ("GET", signed, {}, None),
               ("PATCH", f"/v1/admin/workspaces/{ws}", platform.headers, {"requests_per_minute": 1000})]
    with cf.ThreadPoolExecutor(len(audited)) as pool, _audit_log_locked(platform):
        pending = [pool.submit(httpx.request, method, path if path.startswith("http") else platform.url + path,
                               headers=h, json=body, timeout=60) for method, path, h, body in audited]
        time.sleep(1.5)  # they are waiting on the audit table now
        started = time.monotonic()
        r = httpx.get(f"{platform.url}/v1/models", headers=member, timeout=8)
        assert r.status_code == 200 and time.monotonic() - started < 2
        assert not any(p.done() for p in pending)  # audited before answering
    assert [p.result().status_code for p in pending] == [200, 200, 200]
    actions = [e["action"] for e in httpx.get(f"{platform.url}/v1/admin/audit", params={"workspace_id": ws},
                                              headers=platform.headers).json()["data"]]
    assert {"file.read", "file.read_signed", "workspace.limits"} <= set(actions)
