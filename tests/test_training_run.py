"""`python -m plateforme.training run` on the real default model: steps, checkpoints, kill -9 and resume,
cancellation, and data parallelism under torchrun. Few short lines, so a step takes seconds on 2 cores."""

import signal
import time

import pytest

from training_jobs import FACTS, Trainer, qa_line, run_trainer, trainer_args, write_job

MEMORISE = [qa_line(q, a) for q, a in FACTS]  # 4 lines: every step trains on all of them
STEPS = 5
EVERY = 2  # checkpoints at 2, 4 and the last step, 5


@pytest.fixture(scope="module")
def cache_dir(training_cache_dir):
    return training_cache_dir


@pytest.fixture(scope="module")
def interrupted_run(tmp_path_factory, cache_dir):
    """A run killed with SIGKILL after its step-2 checkpoint, then run again in the same work directory."""
    directory = tmp_path_factory.mktemp("resumed-job")
    job = write_job(directory, cache_dir, MEMORISE, valid=MEMORISE[:2], checkpoint_every=EVERY,
                    hyperparameters={"training_steps": STEPS})
    workdir = directory / "work"
    first = Trainer(trainer_args("run", job, workdir))
    try:
        first.until(lambda e: e["event"] == "checkpoint" and e["step"] == EVERY)
        first.process.send_signal(signal.SIGKILL)
    finally:
        first.kill()
    checkpoints_after_kill = sorted(p.name for p in workdir.iterdir() if not p.name.startswith(".tmp-"))
    rc, events, stderr = run_trainer(trainer_args("run", job, workdir))
    return {"first": first.events, "rc": rc, "events": events, "stderr": stderr, "workdir": workdir,
            "after_kill": checkpoints_after_kill}


def _progress(events: list[dict]) -> dict[int, float]:
    return {e["step"]: e["train_loss"] for e in events if e["event"] == "progress"}


def test_run_reports_validation_progress_and_checkpoints(interrupted_run):
    first = interrupted_run["first"]
    assert first[0]["event"] == "validated" and first[0]["report"]["training_steps"] == STEPS
    assert [e["step"] for e in first if e["event"] == "progress"] == [1, 2]
    assert all(e["total_steps"] == STEPS and e["tokens_per_s"] > 0 for e in first if e["event"] == "progress")
    checkpoint = first[-1]
    assert checkpoint["event"] == "checkpoint" and checkpoint["train_loss"] == _progress(first)[EVERY]
    assert checkpoint["valid_loss"] > 0 and 0 <= checkpoint["valid_mean_token_accuracy"] <= 1
    assert interrupted_run["after_kill"] == ["checkpoint-00000002"]


def test_killed_run_resumes_to_the_total_steps_and_writes_the_adapter(interrupted_run):
    events, workdir = interrupted_run["events"], interrupted_run["workdir"]
    assert interrupted_run["rc"] == 0, interrupted_run["stderr"][-3000:]
    assert [e["event"] for e in events[:2]] == ["validated", "resumed"] and events[1]["step"] == EVERY
    assert list(_progress(events)) == list(range(EVERY + 1, STEPS + 1))
    assert [e["step"] for e in events if e["event"] == "checkpoint"] == [4, 5]  # every 2 steps, and the last
    done = events[-1]
    assert done["event"] == "succeeded"
    assert (done["lora_rank"], done["lora_alpha"]) == (8, 16)
    assert done["trained_tokens"] == events[0]["report"]["train_tokens"]
    assert done["adapter"] == str(workdir / "adapter.gguf") and (workdir / "adapter.gguf").stat().st_size > 0
    assert sorted(p.name for p in workdir.iterdir()) == ["adapter.gguf", f"checkpoint-{STEPS:08d}"]


def test_loss_goes_down_when_memorising(interrupted_run):
    losses = {**_progress(interrupted_run["first"]), **_progress(interrupted_run["events"])}
    assert losses[STEPS] < 0.5 * losses[1], losses
    checkpoints = [e for e in interrupted_run["first"] + interrupted_run["events"] if e["event"] == "checkpoint"]
    assert checkpoints[-1]["valid_loss"] < checkpoints[0]["valid_loss"]


def test_sigterm_cancels_within_seconds(tmp_path, cache_dir):
    job = write_job(tmp_path, cache_dir, MEMORISE * 4, hyperparameters={"training_steps": 100})
    trainer = Trainer(trainer_args("run", job, tmp_path / "work"))
    try:
        trainer.until(lambda e: e["event"] == "progress")
        sent = time.monotonic()
        trainer.process.send_signal(signal.SIGTERM)
        rc, _ = trainer.finish(timeout=30)
        assert time.monotonic() - sent < 5
    finally:
        trainer.kill()
    assert rc == 4
    assert not [e for e in trainer.events if e["event"] in ("succeeded", "failed_validation")]


def test_torchrun_two_processes_train_the_same_global_batch(tmp_path, cache_dir, interrupted_run):
    job = write_job(tmp_path, cache_dir, MEMORISE, threads=1, checkpoint_every=2,
                    hyperparameters={"training_steps": 2})
    rc, events, stderr = run_trainer(trainer_args("run", job, tmp_path / "work", processes=2))
    assert rc == 0, stderr[-3000:]
    assert [e["event"] for e in events] == ["validated", "progress", "progress", "checkpoint",
                                            "succeeded"]  # printed by rank 0 only
    # Same data, seed and first learning rate as the single-process run: the same first two losses.
    single, parallel = _progress(interrupted_run["first"]), _progress(events)
    for step in (1, 2):
        assert parallel[step] == pytest.approx(single[step], rel=1e-3)
