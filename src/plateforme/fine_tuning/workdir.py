"""A job's working directory: its data files, the trainer's job.json, checkpoints and the adapter.

<data_dir>/fine_tuning/jobs/<job id>/
    data/<file id>.jsonl   the training and validation files, copied from the file store
    job.json               what the trainer process is asked to do
    examples.jsonl         a classifier job's valid examples (written by the trainer's validate)
    features.npy           their embeddings, one row per example (written by the gateway)
    train/                 the trainer's checkpoints (resumable) and its adapter.gguf (or head.npz)
"""

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from plateforme.files.service import FileService
from plateforme.storage.fine_tuning_tables import FineTuningJob


@dataclass
class JobPaths:
    root: Path

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def job_file(self) -> Path:
        return self.root / "job.json"

    @property
    def train(self) -> Path:
        return self.root / "train"

    @property
    def examples(self) -> Path:
        return self.root / "examples.jsonl"

    @property
    def features(self) -> Path:
        return self.root / "features.npy"


def job_paths(data_dir: Path, job_id: str) -> JobPaths:
    return JobPaths(Path(data_dir) / "fine_tuning" / "jobs" / job_id)


def adapters_dir(data_dir: Path) -> Path:
    return Path(data_dir) / "fine_tuning" / "adapters"


def classifiers_dir(data_dir: Path) -> Path:
    """Where the heads of classifier fine-tunes are kept."""
    return Path(data_dir) / "fine_tuning" / "classifiers"


def copy_file(files: FileService, file_id: str, dst: Path) -> None:
    """The stored file's bytes at `dst` (written to a temporary name first)."""
    record = files.get_by_id(file_id)
    tmp = dst.with_suffix(".part")
    with open(tmp, "wb") as out:
        for chunk in files.content(record):
            out.write(chunk)
    os.replace(tmp, dst)


def trainer_job(job: FineTuningJob, paths: JobPaths, base_gguf: Path | None, cache_dir: Path,
                threads: int | None, classifier: dict | None = None) -> dict:
    """The trainer's job.json for `job` (data files as laid out by `materialise`); `classifier`: a
    classifier job's section (fine_tuning/classifier_jobs.py), whose base is an embedding model."""
    spec = {
        "job_type": job.job_type or "completion",
        "base_gguf": str(base_gguf) if base_gguf is not None else None,
        "cache_dir": str(cache_dir),
        "training_files": [{"file_id": f["file_id"], "path": str(paths.data / f"{f['file_id']}.jsonl"),
                            "weight": f.get("weight", 1.0)} for f in job.training_files],
        "validation_files": [{"file_id": f, "path": str(paths.data / f"{f}.jsonl")}
                             for f in job.validation_files],
        "hyperparameters": job.hyperparameters,
        "invalid_sample_skip_percentage": job.invalid_sample_skip_percentage,
        "seed": 0,
        "checkpoint_every": None,
        "threads": threads,
    }
    if classifier is not None:
        spec["classifier"] = classifier
    return spec


def materialise(files: FileService, job: FineTuningJob, paths: JobPaths, trainer_spec: dict) -> None:
    """Copy the job's files (once) and write job.json."""
    paths.data.mkdir(parents=True, exist_ok=True)
    ids = [f["file_id"] for f in job.training_files] + list(job.validation_files)
    for file_id in dict.fromkeys(ids):
        dst = paths.data / f"{file_id}.jsonl"
        if not dst.exists():
            copy_file(files, file_id, dst)
    tmp = paths.job_file.with_suffix(".part")
    tmp.write_text(json.dumps(trainer_spec, indent=1))
    os.replace(tmp, paths.job_file)


def remove(paths: JobPaths) -> None:
    shutil.rmtree(paths.root, ignore_errors=True)
