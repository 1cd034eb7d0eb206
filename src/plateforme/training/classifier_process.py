"""The trainer's `validate` and `run` for a classifier job (job.json's "job_type": "classifier").

`validate` reads the training and validation files (classifier_data.py), writes the valid examples
to classifier.examples_path (train first, then valid, in file order) for the gateway to embed, and
emits `validated` or `failed_validation` with the report: lines, valid_lines, errors_total, errors
(file_id, line, reason), label_counts ({target: {label: examples}}), labelled_examples ({target:
examples labelling it}), train_examples, valid_examples, training_steps, epochs.
A target that no valid training line labels cannot be learnt: the job fails (JobError) naming it.

`run` reads the examples and classifier.features_path (float32 (examples, dimension), one row per
line, written by the gateway), trains the head and emits `progress` (step, total_steps,
train_loss; at most every PROGRESS_EVERY_S, and at every checkpoint), `checkpoint` (step,
train_loss, valid_loss, valid_mean_token_accuracy: the mean of the targets' accuracies, targets:
{name: {valid_loss, accuracy, macro_f1}}) and `succeeded` with `head`, the path of
<workdir>/head.npz. A head trains in seconds: a run stopped midway starts again from step 0 (with
the same seed, to the same head). Under torchrun only rank 0 trains.
"""

import logging
import math
import os
import time
from pathlib import Path

import numpy as np

from plateforme.training.classifier_data import (label_counts, read_classifier_examples, read_examples_file,
                                                 write_examples_file)
from plateforme.training.events import Events
from plateforme.training.job import Job, JobError

log = logging.getLogger("plateforme.training")
EXIT_OK, EXIT_FAILED_VALIDATION = 0, 3
HEAD_FILE = "head.npz"
REPORTED_ERRORS = 100  # as training_data's (not imported: it loads torch, which validate does not need)
PROGRESS_EVERY_S = 0.5


def _read(job: Job, files, kind: str, errors: list[dict]) -> tuple[list, int]:
    examples, lines = [], 0
    for data_file in files:
        try:
            found, bad = read_classifier_examples(data_file.path, job.classifier.targets)
        except OSError as exc:
            raise JobError(f"cannot read {kind} file {data_file.file_id} at {data_file.path}: {exc.strerror}") from exc
        examples.extend(found)
        errors.extend({"file_id": data_file.file_id, **error} for error in bad)
        lines += len(found) + len(bad)
    return examples, lines


def validate_classifier(job: Job, events: Events) -> int:
    spec = job.classifier
    errors: list[dict] = []
    train, train_lines = _read(job, job.training_files, "training", errors)
    if train_lines == 0:
        raise JobError("the training files hold no line; upload a JSONL file with one "
                       '{"text": ..., "labels": {...}} object per line')
    valid, valid_lines = _read(job, job.validation_files, "validation", errors)
    lines = train_lines + valid_lines
    per_target = label_counts(train, spec.targets)
    labelled = {name: c["labelled"] for name, c in per_target.items()}
    counts = {name: c["labels"] for name, c in per_target.items()}
    ok = bool(train) and len(errors) / lines <= job.invalid_sample_skip_percentage
    if ok:
        missing = [name for name, n in labelled.items() if n == 0]
        if missing:
            raise JobError(f"no valid training line labels target(s) {', '.join(map(repr, missing))}: a head "
                           "cannot learn a target without examples; label it on some lines, or drop it")
        spec.examples_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = spec.examples_path.with_name(f".tmp-{os.getpid()}-{spec.examples_path.name}")
        write_examples_file(tmp, [(e, "train") for e in train] + [(e, "valid") for e in valid])
        os.replace(tmp, spec.examples_path)
    steps = spec.hyper.total_steps(len(train)) if train else 0
    report = {
        "lines": lines,
        "valid_lines": lines - len(errors),
        "errors": errors[:REPORTED_ERRORS],
        "errors_total": len(errors),
        "label_counts": counts,
        "labelled_examples": labelled,
        "train_examples": len(train),
        "valid_examples": len(valid),
        "training_steps": steps,
        "epochs": round(spec.hyper.epochs_for(steps, len(train)), 4) if train else 0.0,
    }
    log.info("classifier data: %d lines, %d training and %d validation examples, %d bad lines",
             lines, len(train), len(valid), len(errors))
    events.emit("validated" if ok else "failed_validation", report=report)
    return EXIT_OK if ok else EXIT_FAILED_VALIDATION


def _features(job: Job, rows: int) -> np.ndarray:
    spec = job.classifier
    try:
        features = np.load(spec.features_path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise JobError(f"cannot read the examples' embeddings at {spec.features_path} ({exc}); the gateway "
                       "writes them after validate") from exc
    if features.ndim != 2 or features.shape != (rows, spec.dimension) or features.dtype != np.float32:
        raise JobError(f"{spec.features_path} holds a {features.dtype} array of shape {features.shape}, not "
                       f"float32 ({rows}, {spec.dimension}): one {spec.embedding_model} vector per example of "
                       f"{spec.examples_path}; embed the examples again")
    return features


def _finite(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else value


def run_classifier(job: Job, workdir: Path, events: Events) -> int:
    if int(os.environ.get("RANK", "0")) != 0:
        log.info("classifier jobs train in one process: rank %s has nothing to do", os.environ["RANK"])
        return EXIT_OK
    spec = job.classifier
    try:
        pairs = read_examples_file(spec.examples_path)
    except (OSError, ValueError, KeyError) as exc:
        raise JobError(f"cannot read the validated examples at {spec.examples_path} ({exc}); run validate "
                       "first") from exc
    features = _features(job, len(pairs))
    train = [i for i, (_, split) in enumerate(pairs) if split == "train"]
    valid = [i for i, (_, split) in enumerate(pairs) if split == "valid"]
    if not train:
        raise JobError(f"{spec.examples_path} holds no training example; run validate again")
    from plateforme.training.classifier_training import CheckpointReport, train_head  # torch: once the data is read

    last_progress = 0.0

    def progress(step: int, total: int, train_loss: float) -> None:
        nonlocal last_progress
        now = time.monotonic()
        if step == total or step % spec.hyper.every(total) == 0 or now - last_progress >= PROGRESS_EVERY_S:
            last_progress = now
            events.emit("progress", step=step, total_steps=total, train_loss=_finite(train_loss))

    def checkpoint(report: CheckpointReport) -> None:
        events.emit("checkpoint", step=report.step, train_loss=_finite(report.train_loss),
                    valid_loss=report.valid_loss, valid_mean_token_accuracy=report.mean_accuracy,
                    targets=report.targets)

    head = train_head(features[train], [pairs[i][0].labels for i in train], spec.targets, spec.hyper,
                      spec.embedding_model, spec.input_type,
                      valid=(features[valid], [pairs[i][0].labels for i in valid]) if valid else None,
                      on_progress=progress, on_checkpoint=checkpoint)
    workdir.mkdir(parents=True, exist_ok=True)
    out = (workdir / HEAD_FILE).resolve()
    head.save(out)
    events.emit("succeeded", head=str(out), training_steps=head.metadata["training_steps"],
                train_examples=len(train), valid_examples=len(valid), metrics=head.metadata["metrics"])
    return EXIT_OK
