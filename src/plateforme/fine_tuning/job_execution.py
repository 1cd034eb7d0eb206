"""One job's life in a trainer process: copy its data, validate, train, publish the fine-tuned model.

Everything the trainer reports becomes job state: the validation report (metadata or
FAILED_VALIDATION with the reasons per line), checkpoints with their metrics, progress events,
and at the end the adapter, registered and served before the job reads SUCCESS.
"""

import asyncio
import logging
import time
from dataclasses import dataclass
from pathlib import Path

from plateforme.fine_tuning import statuses as st
from plateforme.fine_tuning.estimate import job_metadata
from plateforme.fine_tuning.fine_tuned_models import FineTunedModels, fine_tuned_model_id
from plateforme.fine_tuning.job_store import JobStore
from plateforme.fine_tuning.serving import FineTuneServing
from plateforme.fine_tuning.trainer_process import (EXIT_CANCELLED, EXIT_FAILED_VALIDATION, TrainerProcess,
                                                    trainer_command)
from plateforme.fine_tuning.workdir import job_paths, materialise, trainer_job
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


class JobExecution:
    def __init__(self, job: FineTuningJob, store: JobStore, files: FileService, registry: ModelRegistry,
                 models: FineTunedModels, serving: FineTuneServing, setup: TrainingSetup):
        self.job, self.store, self.files = job, store, files
        self.registry, self.models, self.serving, self.setup = registry, models, serving, setup
        self.paths = job_paths(setup.data_dir, job.id)
        self.process: TrainerProcess | None = None
        self.closing = False  # the gateway is stopping: the job resumes at the next start
        self._last_progress_event = 0.0
        self._speed: float | None = None  # the trainer's own tokens/s (loading excluded)

    async def run(self) -> None:
        job = self.job
        try:
            spec = self.registry.require(job.model)
            trainer_spec = trainer_job(job, self.paths, spec.weights_path(), self.setup.cache_dir,
                                       self.setup.threads)
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
        if failed:
            await self._move(st.FAILED_VALIDATION, summary, expect={st.VALIDATING})
            return False
        speed = await asyncio.to_thread(self._known_speed)
        return await self._move(st.VALIDATED, summary, expect={st.VALIDATING},
                                job_metadata=job_metadata(report, speed))

    def _known_speed(self) -> float | None:
        """Tokens/s measured by the latest finished job on this base model, if any."""
        for job in reversed(self.store.with_status(st.SUCCESS)):
            if job.model == self.job.model and (job.job_metadata or {}).get("measured_tokens_per_s"):
                return job.job_metadata["measured_tokens_per_s"]
        return None

    async def _train(self) -> None:
        process = await self._spawn("run", self.setup.processes)
        started, result = time.monotonic(), None
        async for event in process.events():
            kind = event["event"]
            if kind == "resumed":
                await asyncio.to_thread(self.store.add_event, self.job.id, "status-updated",
                                        {"status": st.RUNNING, "resumed_from_step": event.get("step")})
            elif kind == "checkpoint":
                await asyncio.to_thread(self.store.add_checkpoint, self.job.id, event["step"],
                                        event.get("train_loss"), event.get("valid_loss"),
                                        event.get("valid_mean_token_accuracy"), event.get("trained_tokens"))
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
        if event.get("trained_tokens") is not None:
            await asyncio.to_thread(self.store.set_fields, self.job.id, trained_tokens=event["trained_tokens"])

    async def _publish(self, result: dict, elapsed_s: float) -> None:
        job = self.job
        model_id = fine_tuned_model_id(job.model, job.suffix, job.id)
        try:
            await asyncio.to_thread(self.models.create, model_id, job.workspace_id, job.id, job.model,
                                    Path(result["adapter"]))
            await self.serving.sync(job.model)
        except Exception as exc:
            log.exception("fine-tuned model of job %s cannot be served", job.id)
            await self._move(st.FAILED, {"error": f"the trained adapter cannot be served: {exc}"},
                             expect={st.RUNNING, st.CANCELLATION_REQUESTED})
            return
        tokens = int(result.get("trained_tokens") or 0)
        metadata = dict((await asyncio.to_thread(self.store.get, None, job.id)).job_metadata or {})
        speed = self._speed or (tokens / elapsed_s if elapsed_s > 0 else None)
        metadata["measured_tokens_per_s"] = round(speed, 1) if speed else None
        await self._move(st.SUCCESS, {"fine_tuned_model": model_id}, expect={st.RUNNING, st.CANCELLATION_REQUESTED},
                         fine_tuned_model=model_id, trained_tokens=tokens, job_metadata=metadata)
