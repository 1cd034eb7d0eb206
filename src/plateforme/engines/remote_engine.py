"""Engine `openai`: a remote OpenAI-compatible server that someone else runs (vLLM, llama.cpp's
llama-server, SGLang, TGI, Ollama, another plateforme).

The gateway neither starts nor restarts it: the engine is a client with an admission gate in
front (`parallel` requests at once, `max_queue` waiting, for all its endpoints together), and
`/health` probes it with a one-token chat through the same client as requests. A model declared
with `endpoints` (replicas of one deployment) spreads its requests over them
(engines/endpoint_set.py); `base_url` is a set of one. Only the OpenAI chat protocol is assumed of the server:
no token-id prompts, no tokenizer endpoints, no llama.cpp grammar (engines/engine.py).
"""

import os
from collections.abc import AsyncIterator

import httpx

from plateforme.engines.admission import Admission
from plateforme.engines.endpoint_set import Endpoint, EndpointSet
from plateforme.engines.engine import capabilities_of
from plateforme.engines.errors import EngineUnavailable, EngineUnsupported
from plateforme.engines.openai_client import OpenAIEngineClient
from plateforme.engines.probe import WorkerProbe
from plateforme.engines.supervisor import WorkerState, WorkerStatus
from plateforme.models.spec import ModelSpec


class RemoteEndpointClient(OpenAIEngineClient):
    """The OpenAI protocol to one base URL of a remote server."""

    def __init__(self, model: str, url: str, max_connections: int, timeout_s: float, api_key: str | None):
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else None
        super().__init__(url.rstrip("/"), max_connections, timeout_s, chat_path="/chat/completions",
                         label=f"the remote engine of model {model!r} ({url})", headers=headers)

    async def probe(self, timeout_s: float) -> None:
        """Whether the server answers, cheaply: `GET /models` with this gateway's key; else EngineUnavailable."""
        try:
            response = await self._http.get("/models", timeout=timeout_s)
        except httpx.HTTPError as exc:
            raise EngineUnavailable(f"{self.label} unreachable: {exc!r}") from exc
        self._raise_for_status(response)


class RemoteEngineClient:
    """The OpenAI protocol only, every request naming the server's own model, over the model's
    endpoints (engines/endpoint_set.py: least in flight, failover, probes)."""

    def __init__(self, spec: ModelSpec, max_connections: int, timeout_s: float, api_key: str | None,
                 **probe_options):
        self.endpoints = EndpointSet(spec.name, [
            Endpoint(url, RemoteEndpointClient(spec.name, url, max_connections, timeout_s, api_key))
            for url in spec.urls], **probe_options)
        self.base_url = ", ".join(spec.urls)
        self._model = spec.upstream_model or spec.name
        self._spec = spec

    async def chat(self, payload: dict, timeout: float | None = None) -> dict:
        return await self.endpoints.chat({**payload, "model": self._model}, timeout)

    def stream_chat(self, payload: dict) -> AsyncIterator[dict]:
        return self.endpoints.stream_chat({**payload, "model": self._model})

    def _unsupported(self, feature: str) -> EngineUnsupported:
        return EngineUnsupported(self._spec.name, self._spec.engine, feature)

    async def count_chat_prompt_tokens(self, messages: list[dict]) -> int:
        raise self._unsupported("exact prompt token counts (tokenize / apply-template)")

    async def tokenize(self, text: str) -> list[int]:
        raise self._unsupported("tokenization")

    def stream_completion(self, payload: dict) -> AsyncIterator[dict]:
        raise self._unsupported("generation from token ids")

    async def close(self) -> None:
        await self.endpoints.close()


class RemoteEngine:
    kind = "openai"

    def __init__(self, spec: ModelSpec, engine_timeout: float):
        self.spec = spec
        self.name = spec.name
        self.capabilities = capabilities_of(spec)
        self.admission = Admission(spec.name, spec.parallel, spec.max_queue)
        self.probe = WorkerProbe(self)
        self._timeout = spec.timeout_s or engine_timeout
        self._client: RemoteEngineClient | None = None
        self._api_key: str | None = None
        self._config_error: str | None = None
        if spec.api_key_env:
            self._api_key = os.environ.get(spec.api_key_env) or None
            if self._api_key is None:
                self._config_error = (f"the API key of the remote engine of model {spec.name!r} is missing: "
                                      f"environment variable {spec.api_key_env} (api_key_env) is not set")

    def start(self) -> None:
        """Nothing to start: the server is someone else's."""

    def status(self) -> WorkerStatus:
        """DOWN when misconfigured or when every endpoint is out (their last errors say why),
        else READY; whether a server answers right now is the health probe's verdict."""
        if self._config_error:
            return WorkerStatus(WorkerState.DOWN, None, 0, self._config_error)
        reports = self.endpoint_reports()
        if reports and not any(e["healthy"] for e in reports):
            errors = "; ".join(f"{e['url']}: {e.get('last_error') or 'out'}" for e in reports)
            return WorkerStatus(WorkerState.DOWN, None, 0, f"every endpoint is out ({errors})")
        return WorkerStatus(WorkerState.READY, None, 0, None)

    def client(self) -> RemoteEngineClient:
        if self._config_error:
            raise EngineUnavailable(self._config_error, retry_after_s=30)
        if self._client is None:
            self._client = RemoteEngineClient(self.spec, self.admission.capacity + 4, self._timeout, self._api_key)
        return self._client

    def endpoint_reports(self) -> list[dict]:
        """Each endpoint's state (URL, healthy, in flight, last error), for admin callers of /health."""
        if self._client is None:
            return [{"url": url, "healthy": True, "in_flight": 0, "requests": 0, "failures": 0}
                    for url in self.spec.urls]
        return self._client.endpoints.report()

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()
