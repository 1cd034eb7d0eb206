"""Engine `llamacpp` with `task: embedding`: a GGUF embedding model in a supervised llama.cpp
worker (engines/llamacpp_embedding_worker.py), restarted on failure like the chat workers.

The window is the context per slot (`window`, default `context_length`); llama.cpp embeds no
input longer than that, so inputs are counted first (`/tokenize`) and longer ones refused.
"""

import asyncio
import sys
from pathlib import Path

from plateforme.engines.embedding_client import EmbeddingBatch, InputType, vectors_of
from plateforme.engines.embedding_probe import EmbeddingProbe
from plateforme.engines.engine import EMBEDDING_CAPABILITIES
from plateforme.engines.openai_client import OpenAIEngineClient
from plateforme.engines.supervised_engine import SupervisedEngine
from plateforme.engines.supervisor import WorkerSupervisor
from plateforme.models.gguf_metadata import read_gguf_metadata
from plateforme.models.spec import ModelSpec

TOKENIZE_AT_ONCE = 16  # /tokenize requests in flight per count


def gguf_dimension(path: Path) -> int | None:
    """The model's embedding length, from its GGUF metadata (None when it does not say)."""
    values, _ = read_gguf_metadata(path, {"general.architecture"})
    arch = values.get("general.architecture")
    if not arch:
        return None
    key = f"{arch}.embedding_length"
    values, _ = read_gguf_metadata(path, {key})
    return int(values[key]) if key in values else None


class EmbeddingSupervisor(WorkerSupervisor):
    def command(self, port: int) -> list[str]:
        spec = self.spec
        cmd = [sys.executable, "-m", "plateforme.engines.llamacpp_embedding_worker",
               "--model", str(spec.weights_path()), "--port", str(port),
               "--context-length", str(spec.window), "--parallel", str(spec.parallel)]
        if spec.threads:
            cmd += ["--threads", str(spec.threads)]
        if spec.pooling:
            cmd += ["--pooling", spec.pooling]
        return cmd + self.extra_args


class LlamaCppEmbeddingClient(OpenAIEngineClient):
    def __init__(self, spec: ModelSpec, base_url: str, max_connections: int, timeout_s: float):
        super().__init__(base_url, max_connections, timeout_s, label=f"the embedding worker of model {spec.name!r}")
        self._spec = spec

    def _prefixed(self, texts: list[str], input_type: InputType) -> list[str]:
        prefix = self._spec.query_prefix if input_type == "query" else self._spec.document_prefix
        return [prefix + t for t in texts] if prefix else list(texts)

    async def embed(self, texts: list[str], input_type: InputType) -> EmbeddingBatch:
        body = await self._post("/v1/embeddings", {"input": self._prefixed(texts, input_type),
                                                   "encoding_format": "float"})
        vectors = vectors_of(body.get("data") or [], len(texts), self.label)
        usage = body.get("usage") or {}
        return EmbeddingBatch(vectors, int(usage.get("prompt_tokens") or 0))

    async def count_tokens(self, texts: list[str], input_type: InputType) -> list[int]:
        gate = asyncio.Semaphore(TOKENIZE_AT_ONCE)

        async def count(text: str) -> int:
            async with gate:
                result = await self._post("/tokenize", {"content": text, "add_special": True})
                return len(result["tokens"])

        return list(await asyncio.gather(*(count(t) for t in self._prefixed(texts, input_type))))


class LlamaCppEmbeddingEngine(SupervisedEngine):
    kind = "llamacpp"
    capabilities = EMBEDDING_CAPABILITIES

    def __init__(self, spec: ModelSpec, start_timeout: float, engine_timeout: float):
        super().__init__(spec, EmbeddingSupervisor(spec, start_timeout), engine_timeout)
        self.probe = EmbeddingProbe(self)

    def _new_client(self, base_url: str) -> LlamaCppEmbeddingClient:
        return LlamaCppEmbeddingClient(self.spec, base_url, self.admission.capacity + TOKENIZE_AT_ONCE + 4,
                                       self._engine_timeout)
