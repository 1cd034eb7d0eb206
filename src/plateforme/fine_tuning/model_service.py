"""Manage a workspace's fine-tuned models: rename/describe, archive (stop serving), delete."""

import asyncio

from plateforme.fine_tuning.fine_tuned_models import CLASSIFIER, FineTunedModels
from plateforme.fine_tuning.serving import FineTuneServing
from plateforme.storage.fine_tuning_tables import FineTunedModel
from plateforme.tenancy.principal import Principal


class FineTunedModelService:
    def __init__(self, models: FineTunedModels, serving: FineTuneServing):
        self.models, self.serving = models, serving

    async def get(self, who: Principal, model_id: str) -> FineTunedModel:
        return await asyncio.to_thread(self.models.get, who.workspace_id, model_id)

    async def list(self, who: Principal) -> list[FineTunedModel]:
        return await asyncio.to_thread(self.models.of_workspace, who.workspace_id)

    async def update(self, who: Principal, model_id: str, fields: dict) -> FineTunedModel:
        return await asyncio.to_thread(self.models.update, who.workspace_id, model_id, **fields)

    async def set_archived(self, who: Principal, model_id: str, archived: bool) -> FineTunedModel:
        """Archived models stay listed but are not served (their adapter leaves memory; a classifier's
        head is refused from then on)."""
        row = await asyncio.to_thread(self.models.update, who.workspace_id, model_id, archived=archived)
        await self._resync(row)
        return row

    async def delete(self, who: Principal, model_id: str) -> FineTunedModel:
        row = await asyncio.to_thread(self.models.delete, who.workspace_id, model_id)
        await self._resync(row)
        return row

    async def _resync(self, row: FineTunedModel) -> None:
        if row.model_type != CLASSIFIER:  # classifiers have no adapter host: the gateway runs their heads
            await self.serving.sync(row.root)
