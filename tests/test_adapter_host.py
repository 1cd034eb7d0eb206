"""AdapterHost: one llama.cpp process serves several fine-tunes of the default model; each request
gets its own adapter; changing the adapter set swaps processes without breaking a running stream;
a crashed process is restarted, reported, and its client closed."""

import asyncio
import os
import signal
import time

import pytest
from random_adapters import write_random_adapter
from retired_client_checks import assert_closed_in_time

from plateforme.engines.adapter_host import AdapterHost
from plateforme.engines.errors import EngineUnavailable
from plateforme.engines.lora_client import LoraClient
from plateforme.engines.supervisor import WorkerState
from plateforme.models.registry import ModelRegistry

ASK = {"messages": [{"role": "user", "content": "Tell me a long story about the sea."}], "temperature": 0,
       "top_k": 1}


@pytest.fixture(scope="module")
def adapters(tmp_path_factory):
    base = ModelRegistry.from_file(None).specs[0].weights_path()
    root = tmp_path_factory.mktemp("adapters")
    # Strong random adapters, so each visibly changes the answer.
    return [write_random_adapter(base, root / f"a{i}.gguf", seed=i, rank=4, std=0.2) for i in range(3)]


def spec():
    return ModelRegistry.from_file(None).specs[0].model_copy(update={"parallel": 2, "threads": 1})


async def answer(host: AdapterHost, adapter, max_tokens: int = 12) -> str:
    client = LoraClient(host.client(), host.lora_field(adapter))
    parts = [c["choices"][0]["delta"].get("content") or "" async for c in
             client.stream_chat({**ASK, "max_tokens": max_tokens}) if c.get("choices")]
    return "".join(parts)


def test_each_request_gets_its_adapter_and_reloads_do_not_break_streams(adapters):
    async def scenario():
        host = AdapterHost(spec(), start_timeout=120, engine_timeout=120)
        try:
            with pytest.raises(EngineUnavailable):
                host.client()  # nothing served yet
            await host.set_adapters(adapters[:2])
            first_pid = host._current.supervisor.pid
            a0, a1 = await answer(host, adapters[0]), await answer(host, adapters[1])
            assert a0 and a1 and a0 != a1
            assert await answer(host, adapters[0]) == a0  # same adapter, same greedy answer
            long = asyncio.create_task(answer(host, adapters[0], max_tokens=120))
            await asyncio.sleep(1.0)  # the stream is under way on the first process
            await host.set_adapters(adapters)  # blue-green: a second process takes new requests
            assert host._current.supervisor.pid != first_pid
            assert (await answer(host, adapters[1])) == a1 and await answer(host, adapters[2])
            story = await long
            assert len(story) > 100 and story.startswith(a0[:20])
            for _ in range(60):  # the old process goes once idle
                if not os.path.exists(f"/proc/{first_pid}"):
                    break
                await asyncio.sleep(0.5)
            assert not os.path.exists(f"/proc/{first_pid}")
            with pytest.raises(EngineUnavailable):
                host.lora_field(adapters[0].with_name("unknown.gguf"))
            await host.set_adapters([])
            with pytest.raises(EngineUnavailable):
                host.client()
        finally:
            await host.close()

    asyncio.run(scenario())


def test_a_crashed_host_is_reported_restarted_and_its_old_client_closed(adapters):
    async def scenario():
        host = AdapterHost(spec(), start_timeout=120, engine_timeout=120)
        try:
            assert host.status() is None  # nothing to serve: nothing to report
            host.expect(adapters[:1])
            assert host.status().state is WorkerState.STARTING
            await host.set_adapters(adapters[:1])
            status = host.status()
            assert status.state is WorkerState.READY and status.pid == host._current.supervisor.pid
            before = await answer(host, adapters[0])
            old = host.client()
            os.kill(status.pid, signal.SIGKILL)
            deadline = time.monotonic() + 120
            seen = set()
            while not (host.status().state is WorkerState.READY and host.status().pid != status.pid):
                seen.add(host.status().state)
                assert time.monotonic() < deadline
                await asyncio.sleep(0.05)
            assert seen & {WorkerState.DOWN, WorkerState.STARTING} and host.status().restarts == 1
            assert await answer(host, adapters[0]) == before
            new = host.client()
            assert new is not old
            await assert_closed_in_time(old, new)
        finally:
            await host.close()

    asyncio.run(scenario())
