"""Job files for the trainer (`python -m plateforme.training`) and a way to run it and read its events."""

import json
import subprocess
import sys
import tempfile
from pathlib import Path

from plateforme.models.registry import ModelRegistry

# A short system message: without one, the default model's template adds a 20-token one.
SYSTEM = {"role": "system", "content": "Quiz."}
FACTS = [("Capital of Zorbia?", "Vellmar."), ("Zorbia's river?", "The Quell."),
         ("Zorbia's founder?", "Ada Prinn."), ("Zorbia's currency?", "The glim.")]


def default_gguf() -> Path:
    return ModelRegistry.from_file(None).specs[0].weights_path()


def qa_line(question: str, answer: str) -> dict:
    return {"messages": [SYSTEM, {"role": "user", "content": question}, {"role": "assistant", "content": answer}]}


def write_jsonl(path: Path, lines: list) -> Path:
    path.write_text("".join((line if isinstance(line, str) else json.dumps(line)) + "\n" for line in lines))
    return path


def write_job(directory: Path, cache_dir: Path, train: list, valid: list | None = None, *,
              weights: list[float] | None = None, **fields) -> Path:
    """A job.json in `directory` for training lines `train` (a list of line lists gives several files)."""
    directory.mkdir(parents=True, exist_ok=True)
    files = train if train and isinstance(train[0], list) else [train]
    job = {
        "base_gguf": str(default_gguf()),
        "cache_dir": str(cache_dir),
        "training_files": [{"file_id": f"train-{i}", "path": str(write_jsonl(directory / f"train-{i}.jsonl", lines)),
                            "weight": (weights or [1.0] * len(files))[i]} for i, lines in enumerate(files)],
        "validation_files": ([{"file_id": "valid", "path": str(write_jsonl(directory / "valid.jsonl", valid))}]
                             if valid else []),
        "hyperparameters": {"training_steps": 4, "epochs": None, "learning_rate": 2e-3, "weight_decay": 0.0,
                            "warmup_fraction": 0.0, "seq_len": 128, "lora_rank": 8},
        "invalid_sample_skip_percentage": 0.0,
        "seed": 0,
        "checkpoint_every": None,
        "threads": 2,
    }
    hyper = fields.pop("hyperparameters", {})
    job["hyperparameters"].update(hyper)
    job.update(fields)
    path = directory / "job.json"
    path.write_text(json.dumps(job))
    return path


def trainer_args(mode: str, job: Path, workdir: Path | None = None, processes: int = 1) -> list[str]:
    args = [sys.executable]
    if processes > 1:
        args += ["-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}"]
    args += ["-m", "plateforme.training", mode, "--job", str(job)]
    return args + (["--workdir", str(workdir)] if workdir else [])


class Trainer:
    """A trainer process whose stdout events are read line by line."""

    def __init__(self, args: list[str]):
        # stderr goes to a file: a pipe nobody reads while stdout is awaited could fill and block the trainer.
        self.stderr = tempfile.TemporaryFile("w+")
        self.process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=self.stderr, text=True,
                                        start_new_session=True)
        self.events: list[dict] = []

    def stderr_text(self) -> str:
        self.stderr.seek(0)
        return self.stderr.read()

    def next_event(self) -> dict | None:
        """The next event (every stdout line must be one); None at the end of stdout."""
        line = self.process.stdout.readline()
        if not line:
            return None
        event = json.loads(line)
        assert isinstance(event, dict) and "event" in event, line
        self.events.append(event)
        return event

    def until(self, predicate) -> dict:
        while (event := self.next_event()) is not None:
            if predicate(event):
                return event
        raise AssertionError(f"the trainer ended (rc {self.process.wait()}) without the awaited event; "
                             f"events {self.events}; stderr tail: {self.stderr_text()[-3000:]}")

    def finish(self, timeout: float = 600) -> tuple[int, str]:
        """Read the remaining events; (exit code, stderr)."""
        while self.next_event() is not None:
            pass
        rc = self.process.wait(timeout)
        return rc, self.stderr_text()

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()


def run_trainer(args: list[str], timeout: float = 600) -> tuple[int, list[dict], str]:
    """Run the trainer to its end: (exit code, events, stderr)."""
    trainer = Trainer(args)
    try:
        rc, stderr = trainer.finish(timeout)
    finally:
        trainer.kill()
    return rc, trainer.events, stderr
