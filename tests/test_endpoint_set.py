"""The endpoint set of a remote model (engines/endpoint_set.py), without any server.

Selection, failover and probe backoff are logic: these tests drive them through a small fake
endpoint client (an in-process object standing in for one server, which fails when told to),
because killing and restarting real servers at exact moments cannot be done in milliseconds.
How real HTTP failures are classified is tested on the real RemoteEndpointClient over an
in-process httpx MockTransport (again no server). tests/test_remote_endpoints.py tests the whole
thing live on two llama.cpp servers.
"""

import asyncio
import time

import httpx
import pytest

from plateforme.engines.endpoint_set import Endpoint, EndpointSet
from plateforme.engines.errors import EngineUnavailable
from plateforme.engines.openai_client import EngineServerFailed
from plateforme.engines.remote_engine import RemoteEndpointClient

ROLE = {"choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]}


def token(text: str) -> dict:
    return {"choices": [{"index": 0, "delta": {"content": text}}]}


class FakeServer:
    """Stands in for one server: answers, or fails as told (`fail_at`: before which chunk)."""

    def __init__(self, name: str):
        self.name = name
        self.fail: Exception | None = None
        self.fail_at = 0  # stream: chunks sent before failing
        self.probe_fails = 0  # probes that fail before one succeeds
        self.probes: list[float] = []
        self.requests = 0
        self.gate: asyncio.Event | None = None  # streams wait on it after their first token

    async def chat(self, payload: dict, timeout: float | None = None) -> dict:
        self.requests += 1
        if self.fail:
            raise self.fail
        return {"served_by": self.name}

    async def stream_chat(self, payload: dict):
        self.requests += 1
        chunks = [ROLE, token(self.name), token("!")]
        for i, chunk in enumerate(chunks):
            if self.fail and i == self.fail_at:
                raise self.fail
            yield chunk
            if i == 1 and self.gate is not None:
                await self.gate.wait()

    async def probe(self, timeout_s: float) -> None:
        self.probes.append(time.monotonic())
        if self.probe_fails:
            self.probe_fails -= 1
            raise EngineUnavailable(f"{self.name} unreachable (probe)")

    async def close(self) -> None:
        pass


def endpoint_set(*names: str, **options) -> tuple[EndpointSet, list[FakeServer]]:
    servers = [FakeServer(n) for n in names]
    return EndpointSet("m", [Endpoint(f"http://{s.name}/v1", s) for s in servers], **options), servers


async def collect(stream) -> str:
    text = ""
    async for chunk in stream:
        text += chunk["choices"][0]["delta"].get("content") or ""
    return text


def test_fewest_in_flight_then_round_robin():
    async def run():
        endpoints, _ = endpoint_set("a", "b", "c")
        a, b, c = endpoints.endpoints
        assert [endpoints.pick().url for _ in range(4)] == [a.url, b.url, c.url, a.url]  # all idle: in turn
        a.in_flight, b.in_flight, c.in_flight = 2, 1, 2
        assert endpoints.pick() is b
        b.healthy = False
        assert endpoints.pick() in (a, c)
        a.in_flight = 0
        assert endpoints.pick() is a
    asyncio.run(run())


def test_failure_before_first_token_moves_to_the_other_endpoint_once():
    async def run():
        endpoints, (a, b) = endpoint_set("a", "b", first_probe_s=60)
        a.fail = EngineServerFailed("a unreachable: ConnectError")
        assert await collect(endpoints.stream_chat({})) == "b!"  # a picked first, failed, b served
        assert not endpoints.endpoints[0].healthy and "unreachable" in endpoints.endpoints[0].last_error
        assert await endpoints.chat({}) == {"served_by": "b"}  # a is out: not tried again
        assert a.requests == 1
        # All failing: one retry only, then the error itself.
        endpoints2, (c, d, e) = endpoint_set("c", "d", "e", first_probe_s=60)
        c.fail, d.fail, e.fail = EngineServerFailed("c down"), EngineServerFailed("d down"), EngineServerFailed("e down")
        with pytest.raises(EngineServerFailed, match="d down"):
            await endpoints2.chat({})
        assert (c.requests, d.requests, e.requests) == (1, 1, 0)
        with pytest.raises(EngineServerFailed, match="e down"):
            await collect(endpoints2.stream_chat({}))
        with pytest.raises(EngineUnavailable, match=r"every endpoint .*http://c/v1: c down.*http://e/v1: e down") as no:
            await endpoints2.chat({})
        assert no.value.retry_after_s >= 1
        await endpoints.close()
        await endpoints2.close()
    asyncio.run(run())


def test_a_failure_after_the_opening_role_chunk_is_still_retried():
    async def run():
        endpoints, (a, b) = endpoint_set("a", "b", first_probe_s=60)
        a.fail, a.fail_at = EngineServerFailed("a reset"), 1  # after the role chunk, before any token
        chunks = [c async for c in endpoints.stream_chat({})]
        assert chunks == [ROLE, token("b"), token("!")]  # a's role chunk was held back, never passed on
        await endpoints.close()
    asyncio.run(run())


def test_never_retried_after_a_token_nor_after_a_timeout_nor_for_the_request_itself():
    async def run():
        endpoints, (a, b) = endpoint_set("a", "b", first_probe_s=60)
        a.fail, a.fail_at = EngineServerFailed("a connection lost"), 2  # after token "a"
        seen = []
        with pytest.raises(EngineServerFailed, match="connection lost"):
            async for chunk in endpoints.stream_chat({}):
                seen.append(chunk)
        assert seen == [ROLE, token("a")] and b.requests == 0
        assert not endpoints.endpoints[0].healthy
        endpoints.endpoints[0].healthy = True  # back, to test the timeout
        a.fail = EngineServerFailed("a timed out", timed_out=True)
        endpoints._next = 0
        with pytest.raises(EngineServerFailed, match="timed out"):
            await endpoints.chat({})
        assert b.requests == 0
        assert not endpoints.endpoints[0].healthy
        # A caller's own short deadline (the /health probe's) running out is not the server's failure.
        endpoints.endpoints[0].healthy = True
        endpoints._next = 0
        with pytest.raises(EngineServerFailed, match="timed out"):
            await endpoints.chat({}, timeout=1)
        assert endpoints.endpoints[0].healthy and b.requests == 0
        # The server answered about this request (401, 400, 500...): neither out nor retried.
        endpoints3, (c, d) = endpoint_set("c", "d")
        c.fail = EngineUnavailable("c refused this gateway's credentials (HTTP 401)")
        with pytest.raises(EngineUnavailable, match="HTTP 401"):
            await endpoints3.chat({})
        assert endpoints3.endpoints[0].healthy and d.requests == 0
        await endpoints.close()
    asyncio.run(run())


def test_in_flight_counts_streams_until_they_end_or_are_abandoned():
    async def run():
        endpoints, (a, b) = endpoint_set("a", "b")
        a.gate = b.gate = asyncio.Event()
        streams = [endpoints.stream_chat({}) for _ in range(3)]
        for s in streams:
            await anext(s)  # role + first token: each stream now holds its endpoint
        assert [e.in_flight for e in endpoints.endpoints] == [2, 1]
        assert endpoints.pick() is endpoints.endpoints[1]  # the less loaded one
        await streams[0].aclose()  # abandoned by its caller
        assert [e.in_flight for e in endpoints.endpoints] == [1, 1]
        a.gate.set()
        for s in streams[1:]:
            async for _ in s:
                pass
        assert [e.in_flight for e in endpoints.endpoints] == [0, 0]
    asyncio.run(run())


def test_an_endpoint_out_is_probed_with_growing_delays_and_put_back():
    async def run():
        endpoints, (a, b) = endpoint_set("a", "b", first_probe_s=0.05, max_probe_s=0.2)
        a.fail, a.probe_fails = EngineServerFailed("a unreachable"), 4
        failed_at = time.monotonic()
        assert await endpoints.chat({}) == {"served_by": "b"}
        report = endpoints.report()[0]
        assert report["healthy"] is False and report["failures"] == 1 and "next_probe_in_s" in report
        a.fail = None
        deadline = time.monotonic() + 5
        while not endpoints.endpoints[0].healthy and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        assert endpoints.endpoints[0].healthy and len(a.probes) == 5
        gaps = [t1 - t0 for t0, t1 in zip([failed_at, *a.probes], a.probes)]
        # 0.05 s, doubling (0.1, 0.2), capped at 0.2
        assert 0.045 <= gaps[0] < 0.09 and 0.095 <= gaps[1] < 0.175 and gaps[2] >= 0.19
        assert max(gaps) < 0.35
        endpoints._next = 0
        assert await endpoints.chat({}) == {"served_by": "a"}  # back in rotation
        assert "next_probe_in_s" not in endpoints.report()[0]
        await endpoints.close()
    asyncio.run(run())


def test_http_failures_are_classified_by_the_real_endpoint_client():
    """The real RemoteEndpointClient over an in-process MockTransport (no server): what takes an
    endpoint out (EngineServerFailed) and what is the request's own error."""
    def handler(request: httpx.Request) -> httpx.Response:
        behaviour = request.headers["x-test"]
        if behaviour == "refused":
            raise httpx.ConnectError("connection refused", request=request)
        if behaviour == "read-timeout":
            raise httpx.ReadTimeout("timed out", request=request)
        if behaviour == "cut":  # the server dies mid-stream
            async def body():
                yield b'data: {"choices": [{"index": 0, "delta": {"content": "Pa"}}]}\n\n'
                raise httpx.RemoteProtocolError("peer closed connection", request=request)
            return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=body())
        if request.url.path.endswith("/models"):
            return httpx.Response(200, json={"data": []})
        return httpx.Response(int(behaviour), json={"error": {"message": f"status {behaviour}"}})

    async def attempt(behaviour: str, stream: bool) -> Exception | None:
        client = RemoteEndpointClient("m", "http://replica/v1", 4, 5, "key")
        client._http = httpx.AsyncClient(base_url="http://replica/v1", headers={"x-test": behaviour},
                                         transport=httpx.MockTransport(handler))
        try:
            if stream:
                async for _ in client.stream_chat({}):
                    pass
            else:
                await client.chat({})
        except Exception as exc:  # noqa: BLE001 - the classification is what is tested
            return exc
        finally:
            await client.close()
        return None

    async def run():
        for stream in (False, True):
            refused = await attempt("refused", stream)
            assert type(refused) is EngineServerFailed and not refused.timed_out and "unreachable" in str(refused)
            for status in ("502", "503", "504"):
                assert type(await attempt(status, stream)) is EngineServerFailed
            timeout = await attempt("read-timeout", stream)
            assert type(timeout) is EngineServerFailed and timeout.timed_out
            for status in ("500", "401"):
                assert type(await attempt(status, stream)) is EngineUnavailable
        cut = await attempt("cut", True)
        assert type(cut) is EngineServerFailed and "connection lost" in str(cut)
        client = RemoteEndpointClient("m", "http://replica/v1", 4, 5, "key")
        client._http = httpx.AsyncClient(base_url="http://replica/v1", headers={"x-test": "401"},
                                         transport=httpx.MockTransport(handler))
        await client.probe(1)  # GET /models answers
        await client.close()
        client = RemoteEndpointClient("m", "http://replica/v1", 4, 5, "key")
        client._http = httpx.AsyncClient(base_url="http://replica/v1", headers={"x-test": "refused"},
                                         transport=httpx.MockTransport(handler))
        with pytest.raises(EngineUnavailable, match="unreachable"):
            await client.probe(1)
        await client.close()
    asyncio.run(run())


def test_a_remote_model_with_every_endpoint_out_is_down_and_says_why():
    """Two endpoints nothing listens on (real connection refusals on loopback ports)."""
    from server_process import free_port

    from plateforme.engines.remote_engine import RemoteEngine
    from plateforme.engines.supervisor import WorkerState
    from plateforme.models.spec import ModelSpec

    urls = [f"http://127.0.0.1:{free_port()}/v1" for _ in range(2)]
    engine = RemoteEngine(ModelSpec(name="r", engine="openai", endpoints=urls), engine_timeout=5)

    async def scenario():
        assert engine.status().state is WorkerState.READY  # nothing known against them yet
        for _ in range(2):
            with pytest.raises(EngineUnavailable):
                await engine.client().chat({"messages": [{"role": "user", "content": "hi"}], "max_tokens": 1})
        status = engine.status()
        await engine.close()
        return status

    status = asyncio.run(scenario())
    assert status.state is WorkerState.DOWN
    assert all(url in status.last_error for url in urls) and "every endpoint is out" in status.last_error
