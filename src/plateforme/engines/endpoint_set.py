"""The endpoints of one remote model (replicas of one deployment), and which one serves a request.

- A request goes to the healthy endpoint with the fewest requests in flight (ties: round robin).
- An endpoint whose request fails because of the server (EngineServerFailed: unreachable,
  connection lost, timed out, 502/503/504) is taken out of rotation and probed in the background
  (each endpoint client's `probe()`, a cheap `GET /models`), with a growing delay between probes,
  and put back as soon as it answers.
- A request that failed before its first generated token (nothing of it was passed on) moves to
  another endpoint once; never after a token was passed on, and never after a timeout (its time
  is spent).
- When every endpoint is out, a request fails at once (EngineUnavailable, 503 + Retry-After until
  the next probe) naming each endpoint and its last error.

A single `base_url` is a set of one: it is taken out and probed the same way, so requests fail
fast while the server is down instead of each waiting for its own connection error.
"""

import asyncio
import math
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from plateforme.engines.errors import EngineUnavailable
from plateforme.engines.openai_client import EngineServerFailed


@dataclass
class Endpoint:
    """One base URL and what this gateway knows of it. `client` speaks to that URL alone:
    `chat(payload, timeout)`, `stream_chat(payload)`, `probe(timeout)`, `close()`."""

    url: str
    client: object
    in_flight: int = 0
    healthy: bool = True
    requests: int = 0  # requests sent to it (retries included)
    failures: int = 0  # requests that took it out of rotation
    last_error: str | None = None
    out_since: float | None = None  # time.monotonic() when taken out
    next_probe_at: float | None = None
    probe_task: asyncio.Task | None = field(default=None, repr=False)

    def report(self) -> dict:
        """Its state for admin callers of /health."""
        report = {"url": self.url, "healthy": self.healthy, "in_flight": self.in_flight,
                  "requests": self.requests, "failures": self.failures}
        now = time.monotonic()
        if self.out_since is not None:
            report["out_for_s"] = round(now - self.out_since, 2)
        if self.next_probe_at is not None and not self.healthy:
            report["next_probe_in_s"] = round(max(0.0, self.next_probe_at - now), 2)
        if self.last_error:
            report["last_error"] = self.last_error
        return report


def _carries_output(chunk: dict) -> bool:
    """Whether a stream chunk says anything of the answer (not just the opening role chunk)."""
    if chunk.get("usage"):
        return True
    for choice in chunk.get("choices") or ():
        delta = choice.get("delta") or {}
        if (choice.get("finish_reason") or delta.get("content") or delta.get("reasoning_content")
                or delta.get("tool_calls")):
            return True
    return False


class EndpointSet:
    """The endpoints of model `model`; `first_probe_s` and `max_probe_s` bound the delay between
    probes of an endpoint out of rotation (it doubles from the first to the max)."""

    def __init__(self, model: str, endpoints: list[Endpoint], *, first_probe_s: float = 0.25,
                 max_probe_s: float = 5.0, probe_timeout_s: float = 3.0):
        if not endpoints:
            raise ValueError(f"model {model!r}: no endpoint")
        self.model = model
        self.endpoints = endpoints
        self._first_probe_s, self._max_probe_s, self._probe_timeout_s = first_probe_s, max_probe_s, probe_timeout_s
        self._next = 0  # where the round robin among equally loaded endpoints starts

    def pick(self, exclude: tuple[Endpoint, ...] = ()) -> Endpoint:
        """The healthy endpoint with the fewest in flight (not in `exclude`), or EngineUnavailable."""
        count = len(self.endpoints)
        best: Endpoint | None = None
        best_index = 0
        for offset in range(count):
            index = (self._next + offset) % count
            endpoint = self.endpoints[index]
            if not endpoint.healthy or endpoint in exclude:
                continue
            if best is None or endpoint.in_flight < best.in_flight:
                best, best_index = endpoint, index
        if best is None:
            raise self._none_available()
        self._next = (best_index + 1) % count
        return best

    def _none_available(self) -> EngineUnavailable:
        now = time.monotonic()
        waits = [e.next_probe_at - now for e in self.endpoints if e.next_probe_at is not None]
        states = "; ".join(f"{e.url}: {e.last_error or 'out of rotation'}" for e in self.endpoints)
        return EngineUnavailable(
            f"model {self.model!r}: every endpoint of its remote engine is out of rotation ({states}). "
            "Each is probed (GET /models) and put back as soon as it answers; check that the servers run "
            "and are reachable from this gateway",
            retry_after_s=max(1, math.ceil(min(waits, default=1.0))))

    def taken_out(self, endpoint: Endpoint, exc: Exception) -> None:
        """Record that `endpoint` failed; take it out and start probing it (once)."""
        endpoint.last_error = str(exc)
        endpoint.failures += 1
        if not endpoint.healthy:
            return
        endpoint.healthy = False
        endpoint.out_since = time.monotonic()
        endpoint.next_probe_at = endpoint.out_since + self._first_probe_s
        endpoint.probe_task = asyncio.create_task(self._probe_until_back(endpoint),
                                                  name=f"endpoint-probe {endpoint.url}")

    async def _probe_until_back(self, endpoint: Endpoint) -> None:
        delay = self._first_probe_s
        while True:
            await asyncio.sleep(max(0.0, endpoint.next_probe_at - time.monotonic()))
            try:
                await endpoint.client.probe(self._probe_timeout_s)
            except EngineUnavailable as exc:
                endpoint.last_error = f"{exc} (probe)"
                delay = min(delay * 2, self._max_probe_s)
                endpoint.next_probe_at = time.monotonic() + delay
                continue
            endpoint.healthy, endpoint.out_since, endpoint.next_probe_at = True, None, None
            endpoint.probe_task = None
            return

    def _retry_on(self, exc: EngineServerFailed, tried: tuple) -> Endpoint | None:
        """Where a request that failed before its first token goes next, if anywhere."""
        if exc.timed_out or len(tried) > 1:
            return None
        try:
            return self.pick(exclude=tried)
        except EngineUnavailable:
            return None

    async def chat(self, payload: dict, timeout: float | None = None) -> dict:
        endpoint, tried = self.pick(), ()
        while True:
            tried = (*tried, endpoint)
            endpoint.in_flight += 1
            endpoint.requests += 1
            try:
                return await endpoint.client.chat(payload, timeout)
            except EngineServerFailed as exc:
                if exc.timed_out and timeout is not None:
                    raise  # the caller's own short deadline (a /health probe): slow, not down
                self.taken_out(endpoint, exc)
                endpoint = self._retry_on(exc, tried)
                if endpoint is None:
                    raise
            finally:
                tried[-1].in_flight -= 1

    async def stream_chat(self, payload: dict) -> AsyncIterator[dict]:
        """The stream of one endpoint. Chunks that carry nothing of the answer yet (the opening
        role chunk) are held until the first one that does, so a failure before the first token
        is retried elsewhere without the caller having seen anything."""
        endpoint, tried = self.pick(), ()
        while True:
            tried = (*tried, endpoint)
            endpoint.in_flight += 1
            endpoint.requests += 1
            held: list[dict] = []
            passed_on = False
            stream = endpoint.client.stream_chat(payload)
            try:
                async for chunk in stream:
                    if not passed_on and not _carries_output(chunk):
                        held.append(chunk)
                        continue
                    passed_on = True
                    while held:
                        yield held.pop(0)
                    yield chunk
            except EngineServerFailed as exc:
                self.taken_out(endpoint, exc)
                endpoint = None if passed_on else self._retry_on(exc, tried)
                if endpoint is None:
                    raise
                continue
            finally:
                await stream.aclose()
                tried[-1].in_flight -= 1
            for chunk in held:  # a stream with nothing in it: its chunks as they were
                yield chunk
            return

    def report(self) -> list[dict]:
        return [e.report() for e in self.endpoints]

    async def close(self) -> None:
        tasks = [e.probe_task for e in self.endpoints if e.probe_task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await asyncio.gather(*(e.client.close() for e in self.endpoints))
