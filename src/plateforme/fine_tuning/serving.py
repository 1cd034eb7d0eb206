"""Serve fine-tuned models: one adapter host per base model carries every fine-tune of that base.

The host is one llama.cpp process with the base weights and all LoRA adapters of its fine-tunes
(each a few MB); requests choose their adapter. A new, archived or deleted fine-tune reloads the
host blue-green (the new process starts before the old one goes), so other fine-tunes keep serving.

With several gateway replicas, each one re-reads the fine-tuned models table every `refresh_s`
seconds (and at once when a request names a fine-tune it has not loaded), fetches adapters it
lacks from the blob store, and reloads the hosts whose adapters changed: a fine-tune trained, archived
or deleted through one replica is served, or stops being served, by the others within that delay
(plus the host's reload).
"""

import asyncio
import logging
from dataclasses import dataclass
from pathlib import Path

from plateforme.engines.adapter_host import AdapterHost
from plateforme.engines.admission import Admission
from plateforme.engines.engine import LLAMACPP_CAPABILITIES
from plateforme.engines.lora_client import LoraClient
from plateforme.fine_tuning.errors import FineTuningError
from plateforme.fine_tuning.fine_tuned_models import FineTunedModels, ServedAdapter
from plateforme.models.registry import ModelRegistry
from plateforme.models.spec import ModelSpec

log = logging.getLogger("plateforme.fine_tuning")
REFRESH_S = 5.0
MIN_REFRESH_GAP_S = 0.5  # between two re-reads, however often requests ask for one


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
                 engine_timeout: float, hosts: dict[str, AdapterHost] | None = None,
                 refresh_s: float = REFRESH_S):
        self.registry, self.models = registry, models
        self._start_timeout, self._engine_timeout = start_timeout, engine_timeout
        # Shared with the worker pool (its `adapter_hosts`) so /health and /metrics see them.
        self.hosts: dict[str, AdapterHost] = {} if hosts is None else hosts
        self._locks: dict[str, asyncio.Lock] = {}
        self.refresh_s = refresh_s
        self._wake = asyncio.Event()

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
            paths = await asyncio.to_thread(self.models.local_adapters_of, root)
            await self._host(root).set_adapters(paths)

    def expect(self) -> None:
        """Before `start`: mark the hosts that are about to come up, so health reports them starting."""
        for root in sorted(self.models.roots()):
            adapters = self.models.adapters_of(root)
            if adapters and self.registry.get(root) is not None:
                self._host(root).expect(adapters)

    async def start(self) -> None:
        try:
            published = await asyncio.to_thread(self.models.publish_local)
            if published:
                log.info("%d fine-tune adapter(s) of this data dir put into the blob store", published)
        except Exception:
            log.exception("cannot put this data dir's fine-tune adapters into the blob store")
        for root in sorted(self.models.roots()):
            try:
                await self.sync(root)
            except Exception:  # one broken base must not keep the others from serving
                log.exception("cannot serve the fine-tunes of %s", root)

    def _out_of_date(self) -> list[str]:
        """Base models whose host does not serve exactly their current fine-tunes."""
        roots = {root for root in self.models.roots() | set(self.hosts) if self.registry.get(root) is not None}
        return sorted(root for root in roots
                      if (self.hosts[root].adapters if root in self.hosts else []) != self.models.adapters_of(root))

    async def refresh(self) -> None:
        """Re-read the fine-tuned models and bring every host up to date (other replicas' changes)."""
        gone = await asyncio.to_thread(self.models.reload)
        for root in self._out_of_date():
            try:
                await self.sync(root)
            except Exception:
                log.exception("cannot serve the fine-tunes of %s (retried at the next refresh)", root)
        for served in gone:  # deleted through another replica: the local copy goes too, once unloaded
            host = self.hosts.get(served.root)
            if host is None or served.adapter not in host.adapters:
                await asyncio.to_thread(Path(served.adapter).unlink, True)

    async def watch(self) -> None:
        """Refresh every `refresh_s` seconds, or sooner when a request names an adapter not loaded."""
        while True:
            try:
                await asyncio.wait_for(self._wake.wait(), self.refresh_s)
            except TimeoutError:
                pass
            self._wake.clear()
            try:
                await self.refresh()
            except Exception:
                log.exception("cannot re-read the fine-tuned models (retrying)")
            await asyncio.sleep(MIN_REFRESH_GAP_S)

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
        if served.is_classifier:
            raise FineTuningError(f"model {model!r} is a classifier fine-tune: it does not generate text; classify "
                                  "with it through POST /v1/classifications or /v1/chat/classifications",
                                  400, "model")
        if served.archived:
            raise FineTuningError(f"model {model!r} is archived; unarchive it with "
                                  f"DELETE /v1/fine_tuning/models/{model}/archive to use it", 400, "model")
        spec = self.registry.get(served.root)
        if spec is None:
            raise FineTuningError(f"model {model!r} adapts base model {served.root!r}, which this server "
                                  "does not serve; add it to the models config", 400, "model")
        host = self._host(served.root)
        if served.adapter not in host.adapters:
            self._wake.set()  # made through another replica: load it now rather than at the next refresh
        return FineTuneTarget(spec, host.admission, host, served)
