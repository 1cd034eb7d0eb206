"""One job's life in a trainer process: copy its data, validate, train, publish the fine-tuned model.

Everything the trainer reports becomes job state: the validation report (metadata or
FAILED_VALIDATION with the reasons per line), checkpoints with their metrics, progress events,
and at the end the adapter, registered and served before the job reads SUCCESS. A classifier
job's examples are embedded by the gateway between validation and training
(classifier_embedding.py), and its head, once trained, is served by the gateway at once.
"""

import asyncio
import logging
import time
from dataclasses import dataclass
from pathlib import Path

from plateforme.fine_tuning import statuses as st
from plateforme.fine_tuning.classifier_embedding import EmbeddingProgress, EmbeddingStopped, embed_examples
from plateforme.fine_tuning.classifier_jobs import CLASSIFIER, INPUT_TYPE, classifier_section
from plateforme.fine_tuning.estimate import classifier_job_metadata, job_metadata
from plateforme.fine_tuning.fine_tuned_models import FineTunedModels, fine_tuned_model_id
from plateforme.fine_tuning.job_store import JobStore
from plateforme.fine_tuning.serving import FineTuneServing
from plateforme.fine_tuning.trainer_process import (EXIT_CANCELLED, EXIT_FAILED_VALIDATION, TrainerProcess,
                                                    trainer_command)
from plateforme.fine_tuning.workdir import JobPaths, job_paths, materialise, trainer_job
from plateforme.files.service import FileService
from plateforme.models.registry import ModelRegistry
from plateforme.storage.fine_tuning_tables import FineTuningJob

log = logging.getLogger("plateforme.fine_tuning")
PROGRESS_EVENT_EVERY_S = 15.0
SHOWN_ERRORS = 20


@dataclass
class TrainingSetup:
    data_dir: Path
    cache_dir: Path
    threads: int | None
    processes: int


def job_file(job: FineTuningJob, paths: JobPaths, registry: ModelRegistry, embeddings, setup: TrainingSetup) -> dict:
    """The trainer's job.json for `job`: a completion job's base GGUF, or a classifier job's section
    (its embedding model and the files of its embedding stage)."""
    spec = registry.require(job.model)
    if job.job_type != CLASSIFIER:
        return trainer_job(job, paths, spec.weights_path(), setup.cache_dir, setup.threads)
    if embeddings is None:
        raise RuntimeError("classifier jobs need the embedding service, which this gateway was built without")
    section = classifier_section(job.classifier_targets, spec.name, embeddings.info(spec.name).dimension,
                                 str(paths.examples), str(paths.features))
    # No base weights: the trainer reads the vectors the gateway makes with the embedding model.
    return trainer_job(job, paths, None, setup.cache_dir, setup.threads, section)


class JobExecution:
    def __init__(self, job: FineTuningJob, store: JobStore, files: FileService, registry: ModelRegistry,
                 models: FineTunedModels, serving: FineTuneServing, setup: TrainingSetup, embeddings=None):
        self.job, self.store, self.files = job, store, files
        self.registry, self.models, self.serving, self.setup = registry, models, serving, setup
        self.embeddings = embeddings  # EmbeddingService: a classifier job's embedding stage
        self.classifier = job.job_type == CLASSIFIER
        self.paths = job_paths(setup.data_dir, job.id)
        self.process: TrainerProcess | None = None
        self.closing = False  # the gateway is stopping: the job resumes at the next start
        self._last_progress_event = 0.0
        self._speed: float | None = None  # the trainer's own tokens/s (loading excluded)
        self._embedded_per_s: float | None = None  # a classifier job's embedding stage

    async def run(self) -> None:
        job = self.job
        try:
            trainer_spec = job_file(job, self.paths, self.registry, self.embeddings, self.setup)
            await asyncio.to_thread(materialise, self.files, job, self.paths, trainer_spec)
        except Exception as exc:
            await self._move(st.FAILED, {"error": f"cannot prepare the job: {exc}"})
            return
        if job.status == st.VALIDATING:
            if not await self._validate() or not job.auto_start:
                return
            if not await self._move(st.RUNNING, expect={st.VALIDATED}):
                return
        await self._train()

    async def _move(self, new: str, data: dict | None = None, expect: set[str] | None = None, **fields) -> bool:
        return await asyncio.to_thread(self.store.move, self.job.id, new, expect, data, **fields)

    async def _status(self) -> str:
        return (await asyncio.to_thread(self.store.get, None, self.job.id)).status

    async def _spawn(self, mode: str, processes: int = 1) -> TrainerProcess:
        workdir = self.paths.train if mode == "run" else None
        self.process = TrainerProcess(trainer_command(mode, self.paths.job_file, workdir, processes))
        await self.process.start()
        return self.process

    async def _validate(self) -> bool:
        process = await self._spawn("validate")
        report, failed = None, False
        async for event in process.events():
            if event["event"] in ("validated", "failed_validation"):
                report, failed = event.get("report") or {}, event["event"] == "failed_validation"
        rc = await process.wait()
        if self.closing:
            return False
        if report is None or (rc not in (0, EXIT_FAILED_VALIDATION)):
            if await self._status() == st.CANCELLED:
                return False
            reason = "the trainer was stopped by a signal" if rc == EXIT_CANCELLED else process.reason()
            await self._move(st.FAILED, {"error": f"validation failed: {reason}"}, expect={st.VALIDATING})
            return False
        summary = {"lines": report.get("lines"), "valid_lines": report.get("valid_lines"),
                   "errors_total": report.get("errors_total", 0),
                   "errors": (report.get("errors") or [])[:SHOWN_ERRORS]}
        if self.classifier:
            summary["label_counts"] = report.get("label_counts")
        if failed:
            await self._move(st.FAILED_VALIDATION, summary, expect={st.VALIDATING})
            return False
        speed = await asyncio.to_thread(self._known_speed)
        metadata = classifier_job_metadata(report, speed) if self.classifier else job_metadata(report, speed)
        return await self._move(st.VALIDATED, summary, expect={st.VALIDATING}, job_metadata=metadata)

    def _known_speed(self) -> float | None:
        """Tokens/s (a classifier job's: examples embedded per second) measured by the latest finished
        job of this type on this base model, if any."""
        key = "measured_embedded_per_s" if self.classifier else "measured_tokens_per_s"
        for job in reversed(self.store.with_status(st.SUCCESS)):
            if job.model == self.job.model and (job.job_metadata or {}).get(key):
                return job.job_metadata[key]
        return None

    async def _train(self) -> None:
        if self.classifier and not await self._embed():
            return
        # A head trains in one process (rank 0 alone would, under torchrun).
        process = await self._spawn("run", 1 if self.classifier else self.setup.processes)
        started, result = time.monotonic(), None
        async for event in process.events():
            kind = event["event"]
            if kind == "resumed":
                await asyncio.to_thread(self.store.add_event, self.job.id, "status-updated",
                                        {"status": st.RUNNING, "resumed_from_step": event.get("step")})
            elif kind == "checkpoint":
                await asyncio.to_thread(self.store.add_checkpoint, self.job.id, event["step"],
                                        event.get("train_loss"), event.get("valid_loss"),
                                        event.get("valid_mean_token_accuracy"),
                                        None if self.classifier else event.get("trained_tokens"),
                                        event.get("targets") if self.classifier else None)
            elif kind == "progress":
                await self._progress(event)
            elif kind == "succeeded":
                result = event
        rc = await process.wait()
        if self.closing:
            return
        if rc == 0 and result is not None:
            await self._publish(result, time.monotonic() - started)
        elif await self._status() == st.CANCELLATION_REQUESTED:
            await self._move(st.CANCELLED, expect={st.CANCELLATION_REQUESTED})
        else:  # a trainer stopped by a signal nobody asked for through the API failed, it was not cancelled
            reason = "the trainer was stopped by a signal" if rc == EXIT_CANCELLED else process.reason()
            await self._move(st.FAILED, {"error": reason, "exit_code": rc},
                             expect={st.RUNNING, st.CANCELLATION_REQUESTED})

    async def _progress(self, event: dict) -> None:
        self._speed = event.get("tokens_per_s") or self._speed
        now = time.monotonic()
        if now - self._last_progress_event < PROGRESS_EVENT_EVERY_S:
            return
        self._last_progress_event = now
        data = {k: event.get(k) for k in ("step", "total_steps", "train_loss", "tokens_per_s")}
        await asyncio.to_thread(self.store.add_event, self.job.id, "progress", data)
        if event.get("trained_tokens") is not None and not self.classifier:  # a classifier's: its embedding's
            await asyncio.to_thread(self.store.set_fields, self.job.id, trained_tokens=event["trained_tokens"])

    async def _embed(self) -> bool:
        """A classifier job's embedding stage (skipped when a resumed job has its features already);
        False when the job goes no further (cancelled, failed, or the gateway is stopping)."""
        # A job with a working directory resumes after a restart (the runner looks for train/).
        await asyncio.to_thread(self.paths.train.mkdir, parents=True, exist_ok=True)
        started, total = time.monotonic(), 0

        async def progress(p: EmbeddingProgress) -> None:
            nonlocal total
            total = p.total
            now = time.monotonic()
            if p.embedded < p.total and now - self._last_progress_event < PROGRESS_EVENT_EVERY_S:
                return
            self._last_progress_event = now
            await asyncio.to_thread(self.store.add_event, self.job.id, "progress", {
                "stage": "embedding", "embedded": p.embedded, "total": p.total, "embedding_tokens": p.tokens})

        async def should_stop() -> bool:
            return self.closing or await self._status() != st.RUNNING

        try:
            tokens = await embed_examples(self.embeddings, self.job.model, INPUT_TYPE, self.paths.examples,
                                          self.paths.features, progress, should_stop)
        except EmbeddingStopped:
            tokens = None
        except Exception as exc:
            log.warning("classifier job %s: cannot embed its examples: %s", self.job.id, exc)
            await self._move(st.FAILED, {"error": f"cannot embed the examples with {self.job.model!r}: {exc}"},
                             expect={st.RUNNING, st.CANCELLATION_REQUESTED})
            return False
        if self.closing:
            return False
        status = await self._status()
        if status == st.CANCELLATION_REQUESTED:
            await self._move(st.CANCELLED, expect={st.CANCELLATION_REQUESTED})
            return False
        if status != st.RUNNING:
            return False
        if tokens is not None:  # embedded now (not found complete): the job's trained tokens
            elapsed = time.monotonic() - started
            self._embedded_per_s = total / elapsed if elapsed > 0 else None
            await asyncio.to_thread(self.store.set_fields, self.job.id, trained_tokens=tokens)
        return True

    async def _publish(self, result: dict, elapsed_s: float) -> None:
        job = self.job
        model_id = fine_tuned_model_id(job.model, job.suffix, job.id)
        try:
            if self.classifier:  # served by the gateway (classifiers/service.py) as soon as its row exists
                await asyncio.to_thread(self.models.create, model_id, job.workspace_id, job.id, job.model,
                                        Path(result["head"]), CLASSIFIER, job.classifier_targets)
            else:
                await asyncio.to_thread(self.models.create, model_id, job.workspace_id, job.id, job.model,
                                        Path(result["adapter"]))
                await self.serving.sync(job.model)
        except Exception as exc:
            log.exception("fine-tuned model of job %s cannot be served", job.id)
            what = "head" if self.classifier else "adapter"
            await self._move(st.FAILED, {"error": f"the trained {what} cannot be served: {exc}"},
                             expect={st.RUNNING, st.CANCELLATION_REQUESTED})
            return
        current = await asyncio.to_thread(self.store.get, None, job.id)
        metadata = dict(current.job_metadata or {})
        if self.classifier:  # trained tokens: the embedding tokens of its examples
            tokens = int(current.trained_tokens or 0)
            metadata["train_tokens"] = tokens
            if self._embedded_per_s:
                metadata["measured_embedded_per_s"] = round(self._embedded_per_s, 1)
        else:
            tokens = int(result.get("trained_tokens") or 0)
            speed = self._speed or (tokens / elapsed_s if elapsed_s > 0 else None)
            metadata["measured_tokens_per_s"] = round(speed, 1) if speed else None
        await self._move(st.SUCCESS, {"fine_tuned_model": model_id}, expect={st.RUNNING, st.CANCELLATION_REQUESTED},
                         fine_tuned_model=model_id, trained_tokens=tokens, job_metadata=metadata)
