"""Which engine serves a request's model: a configured model's, or a workspace's fine-tune's."""

from plateforme.engines.engine import Engine
from plateforme.engines.pool import WorkerPool
from plateforme.models.registry import ModelRegistry


class EngineResolver:
    def __init__(self, registry: ModelRegistry, pool: WorkerPool, fine_tunes=None):
        self.registry = registry
        self.pool = pool
        # Resolves a workspace's fine-tuned models (fine_tuning.serving.FineTuneServing), if any.
        self.fine_tunes = fine_tunes

    async def resolve(self, tenant: str | None, model: str) -> Engine:
        """The engine of `model` for workspace `tenant`; UnknownModel when there is none."""
        if self.fine_tunes is not None and self.registry.get(model) is None:
            target = await self.fine_tunes.resolve(tenant, model)  # off the event loop
            if target is not None:
                return target
        return self.pool.get(self.registry.require(model).name)
