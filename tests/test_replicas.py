"""Two live gateway replicas on one PostgreSQL are one platform: a workspace's requests-per-minute
limit holds across both (shared counters in the database), and a key revoked through one is refused
by the other within the key cache's delay (KEY_CACHE_SECONDS)."""

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest
from server_process import DEFAULT_MODEL, ServerProcess, default_model_entry

from plateforme.api.auth import KEY_CACHE_SECONDS

ASK = {"model": DEFAULT_MODEL, "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 1}


@pytest.fixture(scope="module")
def replicas(tmp_path_factory, postgres):
    url = postgres.create_database(f"t_{uuid.uuid4().hex[:12]}")
    models = [default_model_entry(parallel=2, max_queue=8)]
    # The first replica's admin is bootstrapped (and the database migrated) before it starts; the
    # second replica (same database, its own data dir) starts at the same time as the first, and
    # the admin key works on it (a false PLATEFORME_NO_AUTH other than "false" keeps the helper
    # from bootstrapping).
    a = ServerProcess(tmp_path_factory.mktemp("replica-a"), models,
                      {"PLATEFORME_NO_AUTH": "false", "PLATEFORME_DATABASE_URL": url})
    b = ServerProcess(tmp_path_factory.mktemp("replica-b"), models,
                      {"PLATEFORME_NO_AUTH": "0", "PLATEFORME_DATABASE_URL": url})
    b.api_key = a.api_key
    try:
        a.wait_healthy()
        b.wait_healthy()
        yield a, b
    finally:
        a.stop()
        b.stop()


def _member_key(server, workspace: str, **limits) -> tuple[str, str]:
    """(key id, key) of a member of a new workspace, made through `server`'s admin API."""
    with httpx.Client(base_url=server.url, headers=server.headers, timeout=60) as admin:
        ws = admin.post("/v1/admin/workspaces", json={"name": workspace, **limits})
        assert ws.status_code == 200, ws.text
        user = admin.post(f"/v1/admin/workspaces/{ws.json()['id']}/users", json={"email": f"dev@{workspace}.example"})
        key = admin.post("/v1/admin/keys", json={"user_id": user.json()["id"], "name": "dev"}).json()
        return key["id"], key["key"]


def test_a_workspace_rpm_limit_holds_across_replicas(replicas):
    _, key = _member_key(replicas[0], "shared-rpm", requests_per_minute=10)
    if time.time() % 60 > 52:  # not across a window boundary, where the sliding estimate is approximate
        time.sleep(60 - time.time() % 60)
    answers = []
    for i in range(20):  # alternating between the replicas
        server = replicas[i % 2]
        answers.append((server, httpx.post(f"{server.url}/v1/chat/completions", json=ASK, timeout=60,
                                           headers={"Authorization": f"Bearer {key}"})))
    codes = [r.status_code for _, r in answers]
    assert codes.count(200) == 10 and codes.count(429) == 10, codes
    assert codes[:10] == [200] * 10  # the first ten, five through each replica
    for _, refused in answers[10:]:
        assert 1 <= int(refused.headers["Retry-After"]) <= 61
        assert "workspace limit of 10 requests per minute" in refused.json()["message"]


def test_a_key_revoked_through_one_replica_is_refused_by_the_other(replicas):
    a, b = replicas
    key_id, key = _member_key(a, "revoked")
    auth = {"Authorization": f"Bearer {key}"}
    for server in (a, b):  # accepted, and so cached, by both
        assert httpx.get(f"{server.url}/v1/models", headers=auth, timeout=30).status_code == 200
    with httpx.Client(base_url=a.url, headers=a.headers, timeout=30) as admin:
        assert admin.delete(f"/v1/admin/keys/{key_id}").json()["revoked"] is True
    revoked_at = time.monotonic()
    refused_after = {}
    while len(refused_after) < 2 and time.monotonic() - revoked_at < KEY_CACHE_SECONDS + 3:
        for name, server in (("a", a), ("b", b)):
            if name not in refused_after and \
                    httpx.get(f"{server.url}/v1/models", headers=auth, timeout=30).status_code == 401:
                refused_after[name] = time.monotonic() - revoked_at
        time.sleep(0.05)
    assert set(refused_after) == {"a", "b"}, refused_after
    assert max(refused_after.values()) <= KEY_CACHE_SECONDS + 0.5, refused_after


def test_the_container_probes_answer_from_health(replicas):
    """deploy/probe.py, as the compose healthchecks and Kubernetes probes run it."""
    a = replicas[0]
    probe = Path(__file__).parent.parent / "deploy" / "probe.py"

    def run(mode: str, key: str) -> int:
        env = {**os.environ, "PLATEFORME_PORT": str(a.port), "PLATEFORME_API_KEY": key}
        return subprocess.run([sys.executable, str(probe), mode], env=env, capture_output=True, timeout=60).returncode

    assert run("ready", a.api_key) == 0 and run("alive", a.api_key) == 0
    assert run("ready", "not-a-key") == 1  # a wrong key is reported, never taken for health
