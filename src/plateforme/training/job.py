"""The trainer's job file (job.json, written by the gateway): read and checked once, then typed."""

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from plateforme.training.classifier_job import ClassifierSpec

COMPLETION, CLASSIFIER = "completion", "classifier"


class JobError(ValueError):
    """job.json is unreadable or asks for something impossible; the message says what to change."""


@dataclass(frozen=True)
class DataFile:
    file_id: str
    path: Path
    weight: float = 1.0


@dataclass(frozen=True)
class Hyperparameters:
    training_steps: int | None = None
    epochs: float | None = None
    learning_rate: float = 1e-4
    weight_decay: float = 0.1
    warmup_fraction: float = 0.05
    seq_len: int | None = None
    lora_rank: int = 16

    @property
    def lora_alpha(self) -> int:
        return 2 * self.lora_rank


@dataclass(frozen=True)
class Job:
    base_gguf: Path | None  # None for a classifier job (its base is an embedding model the gateway runs)
    cache_dir: Path
    training_files: tuple[DataFile, ...]
    validation_files: tuple[DataFile, ...]
    hyperparameters: Hyperparameters
    invalid_sample_skip_percentage: float = 0.0  # a fraction (0..0.5), Mistral's name
    seed: int = 0
    checkpoint_every: int | None = None
    threads: int | None = None
    job_type: str = COMPLETION
    classifier: "ClassifierSpec | None" = None  # a classifier job's targets, files and hyperparameters


def number(section: dict, key: str, where: str, kind, low: float, high: float, default):
    value = section.get(key)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (kind is int and value != int(value)):
        raise JobError(f"{where}{key} must be {'an integer' if kind is int else 'a number'}, got {value!r}")
    if not (low <= value <= high) or (isinstance(value, float) and not math.isfinite(value)):
        raise JobError(f"{where}{key} must be between {low} and {high}, got {value!r}")
    return kind(value)


def _files(raw, key: str, weighted: bool) -> tuple[DataFile, ...]:
    if not isinstance(raw, list):
        raise JobError(f"job.json: {key} must be a list of {{file_id, path}} objects")
    files = []
    for i, entry in enumerate(raw):
        if not isinstance(entry, dict) or not entry.get("path") or not entry.get("file_id"):
            raise JobError(f"job.json: {key}[{i}] needs a file_id and a path")
        weight = number(entry, "weight", f"job.json: {key}[{i}].", float, 1e-6, 1e6, 1.0) if weighted else 1.0
        files.append(DataFile(str(entry["file_id"]), Path(entry["path"]), weight))
    return tuple(files)


def parse_job(raw: dict) -> Job:
    if not isinstance(raw, dict):
        raise JobError("job.json must hold a JSON object")
    job_type = raw.get("job_type") or COMPLETION
    if job_type not in (COMPLETION, CLASSIFIER):
        raise JobError(f"job.json: job_type must be {COMPLETION!r} or {CLASSIFIER!r}, got {job_type!r}")
    if job_type == CLASSIFIER:
        return _classifier_job(raw)
    for key in ("base_gguf", "cache_dir"):
        if not raw.get(key):
            raise JobError(f"job.json: {key} is missing")
    hyper = raw.get("hyperparameters") or {}
    if not isinstance(hyper, dict):
        raise JobError("job.json: hyperparameters must be an object")
    h = "job.json: hyperparameters."
    params = Hyperparameters(
        training_steps=number(hyper, "training_steps", h, int, 1, 10_000_000, None),
        epochs=number(hyper, "epochs", h, float, 1e-6, 100_000, None),
        learning_rate=number(hyper, "learning_rate", h, float, 0, 1, 1e-4),
        weight_decay=number(hyper, "weight_decay", h, float, 0, 10, 0.1),
        warmup_fraction=number(hyper, "warmup_fraction", h, float, 0, 1, 0.05),
        seq_len=number(hyper, "seq_len", h, int, 16, 1_048_576, None),
        lora_rank=number(hyper, "lora_rank", h, int, 1, 1024, 16),
    )
    if params.training_steps is not None and params.epochs is not None:
        raise JobError("job.json: give hyperparameters.training_steps or hyperparameters.epochs, not both")
    training = _files(raw.get("training_files"), "training_files", weighted=True)
    if not training:
        raise JobError("job.json: training_files is empty; give at least one training file")
    return Job(
        base_gguf=Path(raw["base_gguf"]),
        cache_dir=Path(raw["cache_dir"]),
        training_files=training,
        validation_files=_files(raw.get("validation_files") or [], "validation_files", weighted=False),
        hyperparameters=params,
        invalid_sample_skip_percentage=number(raw, "invalid_sample_skip_percentage", "job.json: ", float, 0, 0.5, 0.0),
        seed=number(raw, "seed", "job.json: ", int, 0, 2**31 - 1, 0),
        checkpoint_every=number(raw, "checkpoint_every", "job.json: ", int, 1, 10_000_000, None),
        threads=number(raw, "threads", "job.json: ", int, 1, 4096, None),
    )


def _classifier_job(raw: dict) -> Job:
    from plateforme.training.classifier_job import parse_classifier

    training = _files(raw.get("training_files"), "training_files", weighted=True)
    if not training:
        raise JobError("job.json: training_files is empty; give at least one training file")
    seed = number(raw, "seed", "job.json: ", int, 0, 2**31 - 1, 0)
    checkpoint_every = number(raw, "checkpoint_every", "job.json: ", int, 1, 10_000_000, None)
    return Job(
        base_gguf=Path(raw["base_gguf"]) if raw.get("base_gguf") else None,
        cache_dir=Path(raw.get("cache_dir") or "."),
        training_files=training,
        validation_files=_files(raw.get("validation_files") or [], "validation_files", weighted=False),
        hyperparameters=Hyperparameters(),
        invalid_sample_skip_percentage=number(raw, "invalid_sample_skip_percentage", "job.json: ", float, 0, 0.5, 0.0),
        seed=seed,
        checkpoint_every=checkpoint_every,
        threads=number(raw, "threads", "job.json: ", int, 1, 4096, None),
        job_type=CLASSIFIER,
        classifier=parse_classifier(raw, seed, checkpoint_every),
    )


def read_job(path: Path) -> Job:
    try:
        raw = json.loads(Path(path).read_text())
    except OSError as exc:
        raise JobError(f"cannot read the job file {path}: {exc.strerror}") from exc
    except ValueError as exc:
        raise JobError(f"the job file {path} is not valid JSON: {exc}") from exc
    return parse_job(raw)
