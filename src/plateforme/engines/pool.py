"""All model workers of this gateway: one supervised process, client and admission gate each.

The pool also lists the adapter hosts of fine-tunes (`adapter_hosts`, filled by the fine-tuning
capability), so health checks and metrics see every worker process of the gateway.
"""

import asyncio

from plateforme.engines.adapter_host import AdapterHost
from plateforme.engines.admission import Admission
from plateforme.engines.errors import EngineUnavailable
from plateforme.engines.openai_client import OpenAIEngineClient
from plateforme.engines.probe import WorkerProbe
from plateforme.engines.retired_clients import RetiredClients
from plateforme.engines.supervisor import WorkerState, WorkerStatus, WorkerSupervisor
from plateforme.models.registry import ModelRegistry
from plateforme.models.spec import ModelSpec


class ModelWorker:
    def __init__(self, spec: ModelSpec, start_timeout: float, engine_timeout: float):
        self.spec = spec
        self.name = spec.name
        self.supervisor = WorkerSupervisor(spec, start_timeout)
        self.admission = Admission(spec.name, spec.parallel, spec.max_queue)
        self.probe = WorkerProbe(self)
        self._engine_timeout = engine_timeout
        self._client: OpenAIEngineClient | None = None
        self._retired = RetiredClients()

    def status(self) -> WorkerStatus:
        return self.supervisor.status()

    def client(self) -> OpenAIEngineClient:
        """The client of the running worker, or EngineUnavailable saying why there is none."""
        sup = self.supervisor
        if sup.state is not WorkerState.READY or sup.base_url is None:
            reason = f": {sup.last_error}" if sup.last_error else ""
            raise EngineUnavailable(
                f"model {self.spec.name!r} is not available (worker {sup.state.value}{reason})",
                retry_after_s=sup.retry_after_s(),
            )
        if self._client is None or self._client.base_url != sup.base_url:
            if self._client is not None:  # the worker was restarted: the old process is gone
                self._retired.retire(self._client)
            self._client = OpenAIEngineClient(
                sup.base_url, max_connections=self.admission.capacity + 4, timeout_s=self._engine_timeout
            )
        return self._client

    async def close(self) -> None:
        await self.supervisor.stop()
        await self._retired.close_all()
        if self._client is not None:
            await self._client.close()


class WorkerPool:
    def __init__(self, registry: ModelRegistry, start_timeout: float, engine_timeout: float):
        self.workers = {
            spec.name: ModelWorker(spec, start_timeout, engine_timeout) for spec in registry.specs
        }
        # Base model name -> the host of its fine-tunes' adapters (started and stopped by its owner).
        self.adapter_hosts: dict[str, AdapterHost] = {}

    def start(self) -> None:
        for worker in self.workers.values():
            worker.supervisor.start()

    async def stop(self) -> None:
        await asyncio.gather(*(w.close() for w in self.workers.values()))

    def get(self, name: str) -> ModelWorker:
        return self.workers[name]

    def every_worker(self) -> list:
        """Base workers and adapter hosts with something to serve, for health checks and metrics."""
        hosts = [host for host in list(self.adapter_hosts.values()) if host.status() is not None]
        return [*self.workers.values(), *hosts]
