"""Usage metering, limits (429 + Retry-After), the admin API and audit, with real keys on a live server."""

import concurrent.futures as cf
import time

import httpx
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
                         "total_tokens": sum(u.total_tokens for u in told)}]
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
