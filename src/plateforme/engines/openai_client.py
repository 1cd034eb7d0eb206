"""Client for a worker that speaks the OpenAI-compatible HTTP protocol (llama.cpp, vLLM, ...)."""

import json
from collections.abc import AsyncIterator

import httpx

from plateforme.engines.errors import EngineContextExceeded, EngineRejected, EngineUnavailable


class EngineServerFailed(EngineUnavailable):
    """The server itself failed, not the request: unreachable, connection lost, timed out, or a
    gateway status (502/503/504). An engine with several endpoints takes that endpoint out of
    rotation and may retry elsewhere (engines/endpoint_set.py); `timed_out`: the request's time
    was spent, so it is not retried."""

    def __init__(self, message: str, timed_out: bool = False):
        super().__init__(message)
        self.timed_out = timed_out


# Statuses that say the server (or a proxy in front of it) cannot serve now, whatever the request.
SERVER_DOWN_STATUSES = (502, 503, 504)


def _transport_error(label: str, exc: httpx.HTTPError, what: str) -> EngineUnavailable:
    """The error of a request that `exc` stopped; `what` says how far it got."""
    if isinstance(exc, httpx.PoolTimeout):  # every connection of this gateway busy: not the server's fault
        return EngineUnavailable(f"{label}: no free connection ({exc!r})")
    if isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout)):
        return EngineServerFailed(f"{label} unreachable: {exc!r}")
    if isinstance(exc, httpx.TimeoutException):
        return EngineServerFailed(f"{label} timed out: {exc!r}", timed_out=True)
    return EngineServerFailed(f"{label} {what}: {exc!r}")


def _engine_error(response: httpx.Response) -> dict:
    try:
        body = response.json()
    except ValueError:
        return {"message": response.text[:500]}
    err = body.get("error", body) if isinstance(body, dict) else body
    return err if isinstance(err, dict) else {"message": str(err)}


class OpenAIEngineClient:
    """Speaks to one worker at `base_url`; one pooled connection set per worker.

    `label` names the engine in errors; `chat_path` is where chat completions are (a remote
    server's base URL already ends in /v1); `headers` go with every request (an API key).
    """

    def __init__(self, base_url: str, max_connections: int, timeout_s: float, *, label: str = "model worker",
                 chat_path: str = "/v1/chat/completions", headers: dict | None = None):
        self.base_url = base_url
        self.label = label
        self._chat_path = chat_path
        self._http = httpx.AsyncClient(
            base_url=base_url,
            headers=headers,
            timeout=httpx.Timeout(timeout_s, connect=5.0),
            limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections),
        )

    async def close(self) -> None:
        await self._http.aclose()

    async def _post(self, path: str, payload: dict, timeout: float | None = None) -> dict:
        kwargs = {"timeout": timeout} if timeout else {}
        try:
            response = await self._http.post(path, json=payload, **kwargs)
        except httpx.HTTPError as exc:
            raise _transport_error(self.label, exc, "connection lost") from exc
        self._raise_for_status(response)
        return response.json()

    def _raise_for_status(self, response: httpx.Response) -> None:
        if response.status_code < 400:
            return
        error = _engine_error(response)
        message = str(error.get("message", error))
        if error.get("type") == "exceed_context_size_error":
            raise EngineContextExceeded(message, error.get("n_prompt_tokens"), error.get("n_ctx"))
        if response.status_code in (401, 403):
            raise EngineUnavailable(f"{self.label} refused this gateway's credentials (HTTP {response.status_code}: "
                                    f"{message}); check the API key configured for it")
        if response.status_code in (400, 422):
            raise EngineRejected(message)
        if response.status_code in SERVER_DOWN_STATUSES:
            raise EngineServerFailed(f"{self.label} answered {response.status_code}: {message}")
        raise EngineUnavailable(f"{self.label} answered {response.status_code}: {message}")

    async def count_chat_prompt_tokens(self, messages: list[dict]) -> int:
        """Tokens the chat template makes of `messages`, as the engine will see them."""
        templated = await self._post("/apply-template", {"messages": messages})
        tokens = await self._post("/tokenize", {"content": templated["prompt"], "add_special": True})
        return len(tokens["tokens"])

    async def chat(self, payload: dict, timeout: float | None = None) -> dict:
        return await self._post(self._chat_path, {**payload, "stream": False}, timeout)

    async def stream_chat(self, payload: dict) -> AsyncIterator[dict]:
        """Yield the engine's stream chunks; raise EngineUnavailable if the stream breaks."""
        body = {**payload, "stream": True, "stream_options": {"include_usage": True}}
        async for chunk in self._sse(self._chat_path, body):
            yield chunk

    async def tokenize(self, text: str) -> list[int]:
        """Token ids of plain `text` (no BOS, special-token names not parsed)."""
        result = await self._post("/tokenize", {"content": text, "add_special": False, "parse_special": False})
        return result["tokens"]

    async def stream_completion(self, payload: dict) -> AsyncIterator[dict]:
        """llama.cpp's native `POST /completion` (prompt given as token ids), streamed.

        Chunks carry `content`, `tokens` (with `return_tokens`), `completion_probabilities`;
        the last one has `stop: true`, `stop_type`, `tokens_predicted` and `tokens_evaluated`.
        """
        async for chunk in self._sse("/completion", {**payload, "stream": True}):
            yield chunk

    async def _sse(self, path: str, body: dict) -> AsyncIterator[dict]:
        try:
            async with self._http.stream("POST", path, json=body) as response:
                if response.status_code >= 400:
                    await response.aread()
                    self._raise_for_status(response)
                finished = False
                async for line in response.aiter_lines():
                    if not line.startswith("data:"):
                        continue
                    data = line[5:].strip()
                    if data == "[DONE]":
                        finished = True
                        break
                    chunk = json.loads(data)
                    if "error" in chunk:
                        raise EngineUnavailable(f"{self.label} failed mid-stream: {chunk['error']}")
                    yield chunk
                    if chunk.get("stop") is True:  # /completion ends with its stop chunk
                        finished = True
                        break
                if not finished:
                    raise EngineServerFailed(f"{self.label} closed the stream before it finished")
        except httpx.HTTPError as exc:
            raise _transport_error(self.label, exc, "connection lost") from exc
