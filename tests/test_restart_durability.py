"""kill -9 in the middle of an upload and of usage writes: after a restart nothing half-written is
visible, and everything that was acknowledged is there."""

import concurrent.futures as cf
import os
import signal
import sqlite3
import threading
import time

import httpx
from server_process import ServerProcess, default_model_entry

MODELS = [default_model_entry(parallel=4, max_queue=16)]


def _restart(workdir, key: str) -> ServerProcess:
    server = ServerProcess(workdir, MODELS, {"PLATEFORME_NO_AUTH": "0"})
    server.api_key = key
    server.wait_healthy()
    return server


def test_kill_during_upload_and_usage_writes_leaves_no_partial_state(tmp_path):
    first = ServerProcess(tmp_path, MODELS, {"PLATEFORME_NO_AUTH": "false"})
    first.wait_healthy()
    key, h = first.api_key, first.headers
    done = httpx.post(f"{first.url}/v1/files", headers=h, files={"file": ("kept.jsonl", b'{"a": 1}\n')})
    assert done.status_code == 200
    kept = done.json()["id"]

    class SlowFile:  # 60 MB, trickled, so the kill lands in the middle of it
        left = 60_000_000

        def read(self, n: int = -1) -> bytes:
            time.sleep(0.02)
            chunk = min(self.left, 100_000)
            self.left -= chunk
            return b"x" * chunk

    upload = threading.Thread(target=lambda: _ignore(lambda: httpx.post(
        f"{first.url}/v1/files", headers=h, timeout=60,
        files={"file": ("interrupted.jsonl", SlowFile())})))
    acknowledged: list[dict] = []
    codes: list[int] = []

    def chat(i):
        r = httpx.post(f"{first.url}/v1/chat/completions", headers=h, timeout=60, json={
            "model": "smollm2-135m-instruct", "messages": [{"role": "user", "content": f"Count to {i}."}],
            "max_tokens": 8})
        codes.append(r.status_code)
        if r.status_code == 200:
            acknowledged.append(r.json()["usage"])

    upload.start()
    with cf.ThreadPoolExecutor(8) as pool:
        futures = [pool.submit(_ignore, chat, i) for i in range(40)]
        deadline = time.monotonic() + 60
        while len(acknowledged) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert upload.is_alive(), "the upload finished before the kill: make it slower"
        os.kill(first.proc.pid, signal.SIGKILL)  # the gateway dies mid-upload and mid-requests
        for f in futures:
            f.result()
    upload.join()
    first.proc.wait()
    assert acknowledged, f"no request finished before the kill: {codes}\n{first.log()}"
    sent_before_kill = len(acknowledged)

    second = _restart(tmp_path, key)
    try:
        files = httpx.get(f"{second.url}/v1/files", headers=h).json()
        assert [f["id"] for f in files["data"]] == [kept]
        assert httpx.get(f"{second.url}/v1/files/{kept}/content", headers=h).content == b'{"a": 1}\n'
        blobs = tmp_path / "data" / "blobs"
        assert not list(blobs.rglob(".partial-*"))
        stored = [p for p in blobs.rglob("*") if p.is_file()]
        assert len(stored) == 1 and stored[0].read_bytes() == b'{"a": 1}\n'
        usage = httpx.get(f"{second.url}/v1/usage", headers=h, params={"group_by": "model"}).json()["data"]
        recorded = usage[0]
        # Every acknowledged request is recorded, and no row is partial (tokens are whole numbers > 0).
        assert sent_before_kill <= recorded["requests"] <= 40
        assert recorded["prompt_tokens"] >= sum(u["prompt_tokens"] for u in acknowledged)
        assert recorded["completion_tokens"] >= sum(u["completion_tokens"] for u in acknowledged)
        db = sqlite3.connect(tmp_path / "data" / "plateforme.db")
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert db.execute("SELECT count(*) FROM usage WHERE prompt_tokens <= 0 OR completion_tokens < 0").fetchone()[0] == 0
        db.close()
    finally:
        second.stop()


def _ignore(fn, *args):
    try:
        fn(*args)
    except httpx.HTTPError:
        pass  # the server was killed under this request: that is the point
