"""Fair admission between workspaces (pure asyncio; the engine is not needed to check the policy)."""

import asyncio

import pytest

from plateforme.engines.admission import Admission
from plateforme.engines.errors import EngineUnavailable


async def _hold(admission: Admission, tenant: str, started: list, gate: asyncio.Event):
    async with admission.admit(tenant):
        started.append(tenant)
        await gate.wait()


def test_waiting_requests_are_served_round_robin_across_workspaces():
    async def scenario():
        admission = Admission("m", slots=1, max_queue=8)
        started: list = []
        gates = {}

        async def request(i: int, tenant: str):
            gates[i] = asyncio.Event()
            async with admission.admit(tenant):
                started.append(tenant)
                await gates[i].wait()

        tenants = ["flood"] * 5 + ["calm"]
        tasks = [asyncio.create_task(request(i, t)) for i, t in enumerate(tenants)]
        await asyncio.sleep(0.01)
        assert admission.running == 1 and admission.queued == 5
        for _ in tenants:  # finish whichever request runs, one at a time
            running = next(i for i in gates if not gates[i].is_set() and len(started) > 0
                           and i in _running_ids(started, tenants, gates))
            gates[running].set()
            await asyncio.sleep(0.01)
        await asyncio.wait_for(asyncio.gather(*tasks), 5)
        return started

    order = asyncio.run(scenario())
    # The calm workspace's single request runs second, not after the four queued flood requests.
    assert order[:2] == ["flood", "calm"], order


def _running_ids(started, tenants, gates):
    """Ids of requests that have started and not been released (the k-th start of a tenant is its
    k-th request, since each workspace's queue is FIFO)."""
    seen: dict[str, int] = {}
    ids = []
    for tenant in started:
        k = seen.get(tenant, 0)
        seen[tenant] = k + 1
        ids.append([i for i, t in enumerate(tenants) if t == tenant][k])
    return [i for i in ids if not gates[i].is_set()]


def test_full_queue_evicts_the_flooders_newest_request_not_the_newcomer():
    async def scenario():
        admission = Admission("m", slots=1, max_queue=3)
        gate = asyncio.Event()
        started: list = []
        flood = [asyncio.create_task(_hold(admission, "flood", started, gate)) for _ in range(4)]
        await asyncio.sleep(0.01)
        assert admission.running == 1 and admission.queued == 3
        calm = asyncio.create_task(_hold(admission, "calm", started, gate))
        await asyncio.sleep(0.01)
        assert admission.queued == 3  # calm took the newest flood request's place
        with pytest.raises(EngineUnavailable):  # and the flooder's extra request is refused at once
            async with admission.admit("flood"):
                pass
        gate.set()
        results = await asyncio.gather(*flood, calm, return_exceptions=True)
        return results, started

    results, started = asyncio.run(scenario())
    assert sum(isinstance(r, EngineUnavailable) for r in results) == 1 and results[-1] is None
    assert started.count("calm") == 1 and started.count("flood") == 3


def test_cancelled_waiters_free_their_place():
    async def scenario():
        admission = Admission("m", slots=1, max_queue=1)
        gate = asyncio.Event()
        running = asyncio.create_task(_hold(admission, "a", [], gate))
        await asyncio.sleep(0)
        waiter = asyncio.create_task(_hold(admission, "a", [], gate))
        await asyncio.sleep(0)
        assert admission.queued == 1
        waiter.cancel()
        await asyncio.gather(waiter, return_exceptions=True)
        assert admission.queued == 0
        gate.set()
        await running
        return admission.in_flight

    assert asyncio.run(scenario()) == 0
