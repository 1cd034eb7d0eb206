"""Put the fine-tuning capability together for one gateway: jobs, runner, fine-tuned models, serving."""

import asyncio
import logging
from dataclasses import dataclass
from pathlib import Path

from plateforme.engines.pool import WorkerPool
from plateforme.files.service import FileService
from plateforme.fine_tuning.fine_tuned_models import FineTunedModels
from plateforme.fine_tuning.job_execution import JobExecution, TrainingSetup
from plateforme.fine_tuning.job_store import JobStore
from plateforme.fine_tuning.model_service import FineTunedModelService
from plateforme.fine_tuning.runner import JobRunner
from plateforme.fine_tuning.serving import FineTuneServing
from plateforme.fine_tuning.service import FineTuningService
from plateforme.models.registry import ModelRegistry
from plateforme.settings import Settings
from plateforme.storage.database import Database

log = logging.getLogger("plateforme.fine_tuning")


@dataclass
class FineTuning:
    jobs: FineTuningService
    models: FineTunedModelService
    serving: FineTuneServing
    runner: JobRunner
    run_jobs: bool

    async def start(self) -> None:
        # Fine-tunes come up beside the base models; until then their requests get 503 + Retry-After
        # (and /health reports their hosts as starting).
        self.serving.expect()
        self._serving_start = asyncio.create_task(self._serve(), name="fine-tunes:start")
        if self.run_jobs:
            self.runner.start()

    async def _serve(self) -> None:
        await self.serving.start()
        await self.serving.watch()  # other replicas' new, archived and deleted fine-tunes

    async def close(self) -> None:
        self._serving_start.cancel()
        await asyncio.gather(self._serving_start, return_exceptions=True)
        await self.runner.close()
        await self.serving.close()


def build_fine_tuning(settings: Settings, db: Database, files: FileService, registry: ModelRegistry,
                      pool: WorkerPool | None = None, embeddings=None) -> FineTuning:
    """`embeddings` (the EmbeddingService): embeds classifier jobs' examples; None: no classifier jobs."""
    data_dir = Path(settings.data_dir)
    setup = TrainingSetup(data_dir=data_dir,
                          cache_dir=Path(settings.training_cache_dir or data_dir / "fine_tuning" / "cache"),
                          threads=settings.training_threads, processes=settings.training_processes)
    store = JobStore(db)
    models = FineTunedModels(db, data_dir, files.blobs)  # adapters and heads shared through the blob store
    serving = FineTuneServing(registry, models, settings.worker_start_timeout, settings.engine_timeout,
                              pool.adapter_hosts if pool is not None else None, settings.fine_tunes_refresh_s)

    def execution(job) -> JobExecution:
        return JobExecution(job, store, files, registry, models, serving, setup, embeddings)

    runner = JobRunner(store, execution, settings.fine_tuning_max_jobs, data_dir)
    return FineTuning(FineTuningService(store, files, registry, runner, setup, embeddings),
                      FineTunedModelService(models, serving), serving, runner, settings.fine_tuning_runner)
