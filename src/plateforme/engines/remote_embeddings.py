"""Engine `openai` with `task: embedding`: a remote OpenAI-compatible embedding server (vLLM,
TEI, llama.cpp's llama-server, another plateforme): `POST {base_url}/embeddings`.

Everything but the request is the remote chat engine's (engines/remote_engine.py): admission,
API key, endpoints with failover and probes, DOWN when every endpoint is out. The server cannot
be asked to count tokens, so a too-long input is the server's to refuse (vLLM and TEI do, unless
told to truncate); its refusal is answered 400.
"""

import httpx

from plateforme.engines.embedding_client import EmbeddingBatch, InputType, vectors_of
from plateforme.engines.embedding_probe import EmbeddingProbe
from plateforme.engines.endpoint_set import Endpoint, EndpointSet
from plateforme.engines.engine import EMBEDDING_CAPABILITIES
from plateforme.engines.errors import EngineRejected, EngineUnavailable
from plateforme.engines.openai_client import EngineServerFailed
from plateforme.engines.remote_engine import RemoteEndpointClient, RemoteEngine
from plateforme.models.spec import ModelSpec

# TEI answers 413 to an input over its window and to a batch over its limits.
REFUSED_STATUSES = (400, 413, 422)


class RemoteEmbeddingEndpointClient(RemoteEndpointClient):
    async def embeddings(self, payload: dict) -> dict:
        try:
            response = await self._http.post("/embeddings", json=payload)
        except httpx.HTTPError as exc:
            raise EngineServerFailed(f"{self.label} unreachable or connection lost: {exc!r}",
                                     timed_out=isinstance(exc, httpx.TimeoutException)) from exc
        if response.status_code in REFUSED_STATUSES:
            raise EngineRejected(f"{self.label} refused the inputs (HTTP {response.status_code}): "
                                 f"{response.text[:500]}")
        self._raise_for_status(response)
        return response.json()


class RemoteEmbeddingClient:
    def __init__(self, spec: ModelSpec, max_connections: int, timeout_s: float, api_key: str | None):
        self.endpoints = EndpointSet(spec.name, [
            Endpoint(url, RemoteEmbeddingEndpointClient(spec.name, url, max_connections, timeout_s, api_key))
            for url in spec.urls])
        self.base_url = ", ".join(spec.urls)
        self._spec = spec
        self._model = spec.upstream_model or spec.name

    async def _post(self, payload: dict) -> dict:
        """One request, moved once to another endpoint when the server (not the request) failed."""
        endpoint, tried = self.endpoints.pick(), ()
        while True:
            tried = (*tried, endpoint)
            endpoint.in_flight += 1
            endpoint.requests += 1
            try:
                return await endpoint.client.embeddings(payload)
            except EngineServerFailed as exc:
                self.endpoints.taken_out(endpoint, exc)
                endpoint = self.endpoints._retry_on(exc, tried)
                if endpoint is None:
                    raise
            finally:
                tried[-1].in_flight -= 1

    async def embed(self, texts: list[str], input_type: InputType) -> EmbeddingBatch:
        prefix = self._spec.query_prefix if input_type == "query" else self._spec.document_prefix
        inputs = [prefix + t for t in texts] if prefix else list(texts)
        body = await self._post({"model": self._model, "input": inputs, "encoding_format": "float"})
        label = f"the remote embedding server of model {self._spec.name!r}"
        if not isinstance(body, dict):
            raise EngineUnavailable(f"{label} answered something other than an embeddings list")
        vectors = vectors_of(body.get("data") or [], len(texts), label)
        return EmbeddingBatch(vectors, int((body.get("usage") or {}).get("prompt_tokens") or 0))

    async def count_tokens(self, texts: list[str], input_type: InputType) -> None:
        return None  # the server cannot be asked: it refuses too-long inputs itself

    async def close(self) -> None:
        await self.endpoints.close()


class RemoteEmbeddingEngine(RemoteEngine):
    kind = "openai"

    def __init__(self, spec: ModelSpec, engine_timeout: float):
        super().__init__(spec, engine_timeout)
        self.capabilities = EMBEDDING_CAPABILITIES
        self.probe = EmbeddingProbe(self)

    def client(self) -> RemoteEmbeddingClient:
        if self._config_error:
            raise EngineUnavailable(self._config_error, retry_after_s=30)
        if self._client is None:
            self._client = RemoteEmbeddingClient(self.spec, self.admission.capacity + 4, self._timeout, self._api_key)
        return self._client
