"""All model workers of this gateway: one supervised process, client and admission gate each."""

import asyncio

from plateforme.engines.admission import Admission
from plateforme.engines.errors import EngineUnavailable
from plateforme.engines.openai_client import OpenAIEngineClient
from plateforme.engines.supervisor import WorkerState, WorkerSupervisor
from plateforme.models.registry import ModelRegistry
from plateforme.models.spec import ModelSpec


class ModelWorker:
    def __init__(self, spec: ModelSpec, start_timeout: float, engine_timeout: float):
        self.spec = spec
        self.supervisor = WorkerSupervisor(spec, start_timeout)
        self.admission = Admission(spec.name, spec.parallel, spec.max_queue)
        self._engine_timeout = engine_timeout
        self._client: OpenAIEngineClient | None = None
        self._retired: list[OpenAIEngineClient] = []

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
            if self._client is not None:
                self._retired.append(self._client)
            self._client = OpenAIEngineClient(
                sup.base_url, max_connections=self.admission.capacity + 4, timeout_s=self._engine_timeout
            )
        return self._client

    async def close(self) -> None:
        await self.supervisor.stop()
        for client in [self._client, *self._retired]:
            if client is not None:
                await client.close()


class WorkerPool:
    def __init__(self, registry: ModelRegistry, start_timeout: float, engine_timeout: float):
        self.workers = {
            spec.name: ModelWorker(spec, start_timeout, engine_timeout) for spec in registry.specs
        }

    def start(self) -> None:
        for worker in self.workers.values():
            worker.supervisor.start()

    async def stop(self) -> None:
        await asyncio.gather(*(w.close() for w in self.workers.values()))

    def get(self, name: str) -> ModelWorker:
        return self.workers[name]
