"""A fine-tuning job survives the platform being killed: its trainer dies with the gateway, and the
next start resumes it from its last checkpoint to SUCCESS; the fine-tuned model is then served,
and served again after a further restart."""

import os
import signal
import time
from pathlib import Path

import httpx
from fine_tuning_data import TRAINING, upload, wait_for
from server_process import DEFAULT_MODEL, ServerProcess, default_model_entry

KEY = "ft-restart-key"
HEADERS = {"Authorization": f"Bearer {KEY}"}


def trainer_pids(job_id: str) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if "plateforme.training" in cmdline and job_id in cmdline:
                pids.append(int(entry.name))
    return pids


def start(workdir: Path, cache: Path) -> ServerProcess:
    server = ServerProcess(workdir, [default_model_entry(parallel=2, threads=1)],
                           {"PLATEFORME_API_KEY": KEY, "PLATEFORME_TRAINING_CACHE_DIR": str(cache)})
    server.wait_healthy()
    return server


def ask(server: ServerProcess, model: str) -> httpx.Response:
    return httpx.post(f"{server.url}/v1/chat/completions", headers=HEADERS, timeout=120, json={
        "model": model, "messages": [{"role": "user", "content": "Who founded Quillbrook?"}], "max_tokens": 8})


def test_killed_platform_resumes_the_job_from_its_checkpoint(tmp_path, training_cache_dir):
    server = start(tmp_path, training_cache_dir)
    try:
        data = upload(server.url, HEADERS, TRAINING)
        job = httpx.post(f"{server.url}/v1/fine_tuning/jobs", headers=HEADERS, json={
            "model": DEFAULT_MODEL, "training_files": [{"file_id": data}],
            "hyperparameters": {"training_steps": 6, "learning_rate": 1e-3, "seq_len": 128, "lora_rank": 4}}).json()
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            detail = httpx.get(f"{server.url}/v1/fine_tuning/jobs/{job['id']}", headers=HEADERS).json()
            if detail["checkpoints"] or detail["status"] not in ("QUEUED", "VALIDATING", "VALIDATED", "RUNNING"):
                break
            time.sleep(0.3)
        assert detail["status"] == "RUNNING" and detail["checkpoints"], detail
        assert trainer_pids(job["id"])
    finally:
        server.proc.send_signal(signal.SIGKILL)
        server.proc.wait()
    deadline = time.monotonic() + 10
    while trainer_pids(job["id"]) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not trainer_pids(job["id"]), "the trainer outlived the gateway"

    server = start(tmp_path, training_cache_dir)
    try:
        done = wait_for(server.url, HEADERS, job["id"], {"SUCCESS", "FAILED", "CANCELLED"})
        assert done["status"] == "SUCCESS", done
        resumed = [e["data"] for e in done["events"] if e["data"] and "resumed_from_step" in e["data"]]
        assert resumed and resumed[0]["resumed_from_step"] >= 1, done["events"]
        assert done["checkpoints"][0]["step_number"] == 6
        assert ask(server, done["fine_tuned_model"]).status_code == 200
    finally:
        server.stop()
    server = start(tmp_path, training_cache_dir)  # a fine-tune is served again after a restart
    try:
        deadline = time.monotonic() + 60
        while (answer := ask(server, done["fine_tuned_model"])).status_code == 503 and time.monotonic() < deadline:
            time.sleep(0.5)
        assert answer.status_code == 200, answer.text
    finally:
        server.stop()
    assert os.path.exists(tmp_path / "data" / "fine_tuning" / "adapters")
