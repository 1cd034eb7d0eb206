"""Serve fine-tuned models: one adapter host per base model carries every fine-tune of that base.

The host is one llama.cpp process with the base weights and all LoRA adapters of its fine-tunes
(each a few MB); requests choose their adapter. A new, archived or deleted fine-tune reloads the
host blue-green (the new process starts before the old one goes), so other fine-tunes keep serving.
"""

import asyncio
import logging
from dataclasses import dataclass

from plateforme.engines.adapter_host import AdapterHost
from plateforme.engines.admission import Admission
from plateforme.engines.engine import LLAMACPP_CAPABILITIES
from plateforme.engines.lora_client import LoraClient
from plateforme.fine_tuning.errors import FineTuningError
from plateforme.fine_tuning.fine_tuned_models import FineTunedModels, ServedAdapter
from plateforme.models.registry import ModelRegistry
from plateforme.models.spec import ModelSpec

log = logging.getLogger("plateforme.fine_tuning")


@dataclass
class FineTuneTarget:
    """What the chat service needs of a served model: its spec, admission gate and client."""
    spec: ModelSpec
    admission: Admission
    host: AdapterHost
    served: ServedAdapter
    kind = "llamacpp"  # fine-tunes are served by a llama.cpp adapter host
    capabilities = LLAMACPP_CAPABILITIES

    def client(self) -> LoraClient:
        return LoraClient(self.host.client(), self.host.lora_field(self.served.adapter))


class FineTuneServing:
    def __init__(self, registry: ModelRegistry, models: FineTunedModels, start_timeout: float,
                 engine_timeout: float, hosts: dict[str, AdapterHost] | None = None):
        self.registry, self.models = registry, models
        self._start_timeout, self._engine_timeout = start_timeout, engine_timeout
        # Shared with the worker pool (its `adapter_hosts`) so /health and /metrics see them.
        self.hosts: dict[str, AdapterHost] = {} if hosts is None else hosts
        self._locks: dict[str, asyncio.Lock] = {}

    def _host(self, root: str) -> AdapterHost:
        if root not in self.hosts:
            spec = self.registry.require(root)
            self.hosts[root] = AdapterHost(spec, self._start_timeout, self._engine_timeout)
        return self.hosts[root]

    async def sync(self, root: str) -> None:
        """Make the host of `root` serve exactly the current fine-tunes of `root`."""
        if self.registry.get(root) is None:
            log.warning("fine-tunes of %r are not served: the base model is not configured", root)
            return
        async with self._locks.setdefault(root, asyncio.Lock()):
            await self._host(root).set_adapters(self.models.adapters_of(root))

    def expect(self) -> None:
        """Before `start`: mark the hosts that are about to come up, so health reports them starting."""
        for root in sorted(self.models.roots()):
            adapters = self.models.adapters_of(root)
            if adapters and self.registry.get(root) is not None:
                self._host(root).expect(adapters)

    async def start(self) -> None:
        for root in sorted(self.models.roots()):
            try:
                await self.sync(root)
            except Exception:  # one broken base must not keep the others from serving
                log.exception("cannot serve the fine-tunes of %s", root)

    async def close(self) -> None:
        await asyncio.gather(*(host.close() for host in self.hosts.values()), return_exceptions=True)

    async def resolve(self, workspace_id: str, model: str) -> FineTuneTarget | None:
        """The served fine-tune `model` of the workspace; None when `model` is not one. The database
        is read (off the event loop) only for ids this gateway has not seen lately."""
        known, served = self.models.cached(workspace_id, model)
        if not known:
            served = await asyncio.to_thread(self.models.lookup, workspace_id, model)
        return self._target(model, served)

    def _target(self, model: str, served: ServedAdapter | None) -> FineTuneTarget | None:
        if served is None:
            return None
        if served.archived:
            raise FineTuningError(f"model {model!r} is archived; unarchive it with "
                                  f"DELETE /v1/fine_tuning/models/{model}/archive to use it", 400, "model")
        spec = self.registry.get(served.root)
        if spec is None:
            raise FineTuningError(f"model {model!r} adapts base model {served.root!r}, which this server "
                                  "does not serve; add it to the models config", 400, "model")
        host = self._host(served.root)
        return FineTuneTarget(spec, host.admission, host, served)
