"""Turn the trainer's validation report into the job's metadata (tokens, steps, expected duration)."""

import time

# Trained tokens per second assumed before this server has finished a job on a base model
# (SmolLM2-135M with LoRA on 2 CPU cores does a few hundred); a finished job's measured speed
# replaces it for that model.
DEFAULT_TOKENS_PER_S = 300.0
# Loading the base model and tokenizer before the first step.
STARTUP_S = 20


def job_metadata(report: dict, tokens_per_s: float | None) -> dict:
    speed = tokens_per_s or DEFAULT_TOKENS_PER_S
    train_tokens = int(report.get("train_tokens") or 0)
    return {
        "expected_duration_seconds": int(STARTUP_S + train_tokens / speed),
        # Self-hosted: no price per token.
        "cost": 0.0,
        "cost_currency": None,
        "train_tokens_per_step": report.get("train_tokens_per_step"),
        "train_tokens": train_tokens,
        "data_tokens": report.get("data_tokens"),
        "estimated_start_time": None,
        "epochs": report.get("epochs"),
        "training_steps": report.get("training_steps"),
    }


def dry_run_answer(report: dict, tokens_per_s: float | None, queued_ahead: int, classifier: bool = False) -> dict:
    """The LegacyJobMetadataOut of `POST /v1/fine_tuning/jobs?dry_run=true`."""
    meta = classifier_job_metadata(report, None) if classifier else job_metadata(report, tokens_per_s)
    meta["estimated_start_time"] = int(time.time()) if queued_ahead == 0 else None
    skipped = report.get("errors_total", 0)
    meta["details"] = (f"{report.get('valid_lines', 0)} of {report.get('lines', 0)} lines are valid"
                       + (f"; {skipped} would be skipped" if skipped else "")
                       + (f"; {queued_ahead} job(s) queued ahead" if queued_ahead else ""))
    meta["deprecated"] = False
    meta["object"] = "job.metadata"
    return meta


# Classifier jobs: examples embedded per second by the embedding model before any is measured
# (multilingual-e5-small on 2 CPU cores, short texts), head steps per second, and the trainer's
# start (no base model to load: torch and numpy).
DEFAULT_EMBEDDED_PER_S = 50.0
HEAD_STEPS_PER_S = 100.0
CLASSIFIER_STARTUP_S = 5


def classifier_job_metadata(report: dict, embedded_per_s: float | None) -> dict:
    """A classifier job's metadata: its duration is the embedding of its examples, then the head's steps."""
    examples = int(report.get("valid_lines") or 0)
    steps = report.get("training_steps")
    seconds = CLASSIFIER_STARTUP_S + examples / (embedded_per_s or DEFAULT_EMBEDDED_PER_S) \
        + (steps or 0) / HEAD_STEPS_PER_S
    return {
        "expected_duration_seconds": int(seconds),
        "cost": 0.0,
        "cost_currency": None,
        "train_tokens_per_step": None,
        "train_tokens": report.get("train_tokens"),  # the embedding tokens, known once embedded
        "data_tokens": report.get("data_tokens"),
        "estimated_start_time": None,
        "epochs": report.get("epochs"),
        "training_steps": steps,
        "label_counts": report.get("label_counts"),
    }
