"""Fine-tuning jobs for a workspace: create (or estimate), list, get, start, cancel."""

import asyncio
import importlib.util
import re
import shutil
import tempfile
import uuid
from pathlib import Path

from plateforme.fine_tuning import statuses as st
from plateforme.fine_tuning.classifier_jobs import (CLASSIFIER, checked_hyperparameters, checked_targets,
                                                    embedding_spec)
from plateforme.fine_tuning.errors import FineTuningError
from plateforme.fine_tuning.estimate import dry_run_answer
from plateforme.fine_tuning.job_execution import TrainingSetup, job_file
from plateforme.fine_tuning.job_store import JobDetail, JobFilters, JobStore
from plateforme.fine_tuning.runner import JobRunner
from plateforme.fine_tuning.trainer_process import EXIT_FAILED_VALIDATION, TrainerProcess, trainer_command
from plateforme.fine_tuning.workdir import JobPaths, materialise
from plateforme.files.service import FileNotFound, FileService
from plateforme.models.registry import ModelRegistry
from plateforme.models.spec import ModelSpec
from plateforme.storage.fine_tuning_tables import FineTuningJob
from plateforme.tenancy.ids import utcnow
from plateforme.tenancy.principal import Principal

SUFFIX = re.compile(r"^[A-Za-z0-9._-]{1,18}$")
TRAINING_PACKAGES = ("torch", "transformers", "peft")
COMPLETION = "completion"
DEFAULT_LORA_RANK = 16


def _training_installed() -> None:
    missing = [p for p in TRAINING_PACKAGES if importlib.util.find_spec(p) is None]
    if missing:
        raise FineTuningError(
            f"fine-tuning is not installed on this server (missing: {', '.join(missing)}); install it with "
            "`pip install 'plateforme[train]'` (on CPU-only machines: `pip install torch==2.13.0` first)", 503)


class FineTuningService:
    def __init__(self, store: JobStore, files: FileService, registry: ModelRegistry, runner: JobRunner,
                 setup: TrainingSetup, embeddings=None):
        self.store, self.files, self.registry, self.runner, self.setup = store, files, registry, runner, setup
        self.embeddings = embeddings  # EmbeddingService: the dimension of a classifier job's vectors

    def _check_files(self, who: Principal, ids: list[str], param: str) -> None:
        for file_id in ids:
            try:
                record = self.files.get(who, file_id)
            except FileNotFound:
                raise FineTuningError(f"{param}: no file with id {file_id!r} in this workspace; upload it "
                                      "with POST /v1/files (purpose fine-tune)", 404, param) from None
            if record.purpose != "fine-tune":
                raise FineTuningError(f"{param}: file {file_id} was uploaded with purpose {record.purpose!r}; "
                                      "training data needs purpose 'fine-tune'", 400, param)

    def _new_job(self, who: Principal, body: dict) -> FineTuningJob:
        _training_installed()
        job_type = body.get("job_type") or COMPLETION
        for unsupported in ("integrations", "repositories"):
            if body.get(unsupported):
                raise FineTuningError(f"{unsupported} are not supported by this server", 400, unsupported)
        if job_type == CLASSIFIER:
            if self.embeddings is None:
                raise FineTuningError("classifier jobs are not available on this gateway (it was built without "
                                      "the embedding service)", 503, "job_type")
            spec = embedding_spec(self.registry, body["model"])
            targets = checked_targets(body.get("classifier_targets"))
            hyper = checked_hyperparameters(body.get("hyperparameters"))
        else:
            if body.get("classifier_targets"):
                raise FineTuningError("classifier_targets are for classifier jobs: give job_type 'classifier' (and "
                                      "an embedding model), or leave them out", 400, "classifier_targets")
            spec, targets = self._completion_base(body["model"]), None
            hyper = dict(body.get("hyperparameters") or {})
            if hyper.get("training_steps") is not None and hyper.get("epochs") is not None:
                raise FineTuningError("give hyperparameters.training_steps or hyperparameters.epochs, not both",
                                      400, "hyperparameters")
            hyper.setdefault("lora_rank", DEFAULT_LORA_RANK)
        suffix = body.get("suffix")
        if suffix is not None and not SUFFIX.match(suffix):
            raise FineTuningError("suffix: 1 to 18 letters, digits, '.', '_' or '-'", 400, "suffix")
        training = [{"file_id": str(f["file_id"]), "weight": f.get("weight", 1.0)}
                    for f in body.get("training_files") or []]
        if not training:
            raise FineTuningError("training_files: give at least one uploaded training file", 400, "training_files")
        validation = [str(f) for f in body.get("validation_files") or []]
        self._check_files(who, [f["file_id"] for f in training], "training_files")
        self._check_files(who, validation, "validation_files")
        now = utcnow()
        return FineTuningJob(
            id=str(uuid.uuid4()), workspace_id=who.workspace_id, created_by=who.user_id, model=spec.name,
            job_type=job_type, classifier_targets=targets,
            status=st.QUEUED, auto_start=body.get("auto_start", True) is not False, suffix=suffix,
            hyperparameters=hyper, training_files=training, validation_files=validation,
            invalid_sample_skip_percentage=body.get("invalid_sample_skip_percentage") or 0.0,
            job_metadata=None, trained_tokens=None, fine_tuned_model=None, created_at=now, modified_at=now)

    def _completion_base(self, model: str) -> ModelSpec:
        spec = self.registry.require(model)
        if spec.task == "embedding":
            raise FineTuningError(f"model {spec.name!r} is an embedding model; completion fine-tuning needs a chat "
                                  "model (see GET /v1/models), or train a classifier head over it with job_type "
                                  "'classifier'", 400, "model")
        if not spec.local:
            raise FineTuningError(f"model {spec.name!r} is served by engine {spec.engine!r}, which does not support "
                                  "fine-tuning (its weights are on a remote server); fine-tune a model served by "
                                  "engine 'llamacpp'", 400, "model")
        if spec.tokenizer:
            raise FineTuningError(f"model {spec.name!r} builds prompts with a Mistral tokenizer, which training "
                                  "does not support yet; fine-tune a model served with its GGUF chat template",
                                  400, "model")
        return spec

    async def create(self, who: Principal, body: dict) -> FineTuningJob:
        job = await asyncio.to_thread(self._new_job, who, body)
        job = await asyncio.to_thread(self.store.add, job)
        self.runner.wake()
        return job

    async def dry_run(self, who: Principal, body: dict) -> dict:
        """Validate the data and estimate the job, without creating it."""
        job = await asyncio.to_thread(self._new_job, who, body)
        paths = JobPaths(Path(tempfile.mkdtemp(prefix="dry-run-", dir=self._scratch())))
        try:
            trainer_spec = job_file(job, paths, self.registry, self.embeddings, self.setup)
            await asyncio.to_thread(materialise, self.files, job, paths, trainer_spec)
            process = TrainerProcess(trainer_command("validate", paths.job_file, None, 1))
            await process.start()
            report = None
            async for event in process.events():
                if event["event"] in ("validated", "failed_validation"):
                    report = event.get("report") or {}
            rc = await process.wait()
        finally:
            shutil.rmtree(paths.root, ignore_errors=True)
        if report is None or rc not in (0, EXIT_FAILED_VALIDATION):
            raise FineTuningError(f"validation failed: {process.reason()}", 500)
        if rc == EXIT_FAILED_VALIDATION:
            shown = "; ".join(f"{e.get('file_id')} line {e.get('line')}: {e.get('reason')}"
                              for e in (report.get("errors") or [])[:5])
            raise FineTuningError(f"the training data is invalid ({report.get('errors_total')} bad lines of "
                                  f"{report.get('lines')}): {shown}", 400, "training_files")
        queued = len(await asyncio.to_thread(self.store.with_status, st.QUEUED, st.VALIDATING, st.RUNNING))
        return dry_run_answer(report, None, queued, classifier=job.job_type == CLASSIFIER)

    def _scratch(self) -> Path:
        path = self.setup.data_dir / "fine_tuning" / "scratch"
        path.mkdir(parents=True, exist_ok=True)
        return path

    async def get(self, who: Principal, job_id: str) -> JobDetail:
        return await asyncio.to_thread(self.store.detail, who.workspace_id, job_id)

    async def list(self, who: Principal, page: int, page_size: int, filters: JobFilters):
        return await asyncio.to_thread(self.store.page, who.workspace_id, page, page_size, filters)

    async def cancel(self, who: Principal, job_id: str) -> JobDetail:
        job = await asyncio.to_thread(self.store.get, who.workspace_id, job_id)
        if job.status in st.FINAL:
            raise FineTuningError(f"job {job_id} is already {job.status}", 409, "job_id")
        if job.status == st.RUNNING:
            moved = await asyncio.to_thread(self.store.move, job_id, st.CANCELLATION_REQUESTED, {st.RUNNING})
        elif job.status == st.CANCELLATION_REQUESTED:
            moved = True
        else:
            moved = await asyncio.to_thread(self.store.move, job_id, st.CANCELLED,
                                            {st.QUEUED, st.VALIDATING, st.VALIDATED})
        if not moved:  # its status changed meanwhile: answer with what it is now
            return await self.get(who, job_id)
        await self.runner.cancel(job_id)
        return await self.get(who, job_id)

    async def start(self, who: Principal, job_id: str) -> JobDetail:
        job = await asyncio.to_thread(self.store.get, who.workspace_id, job_id)
        if job.status != st.VALIDATED:
            raise FineTuningError(f"only a VALIDATED job can be started; job {job_id} is {job.status}", 409, "job_id")
        await asyncio.to_thread(self.store.move, job_id, st.QUEUED, {st.VALIDATED}, None, auto_start=True)
        self.runner.wake()
        return await self.get(who, job_id)
