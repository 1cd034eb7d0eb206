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


def test_a_request_takes_as_many_slots_as_its_weight():
    async def scenario():
        admission = Admission("m", slots=4, max_queue=8)
        gate = asyncio.Event()
        started: list = []

        async def hold(tenant: str, weight: int):
            async with admission.admit(tenant, weight=weight):
                started.append(tenant)
                await gate.wait()

        wide = asyncio.create_task(hold("wide", 4))  # n=4: the whole worker
        await asyncio.sleep(0.01)
        assert admission.running == 4
        small = asyncio.create_task(hold("small", 1))
        await asyncio.sleep(0.01)
        assert started == ["wide"] and admission.queued == 1  # waits: no slot is free
        gate.set()
        await asyncio.wait_for(asyncio.gather(wide, small), 5)
        assert admission.running == 0 and admission.queued == 0
        return started

    assert asyncio.run(scenario()) == ["wide", "small"]


def test_a_heavy_waiter_is_not_overtaken_by_light_ones():
    async def scenario():
        admission = Admission("m", slots=2, max_queue=8)
        gates = [asyncio.Event() for _ in range(4)]
        started: list = []

        async def hold(i: int, tenant: str, weight: int):
            async with admission.admit(tenant, weight=weight):
                started.append(i)
                await gates[i].wait()

        tasks = [asyncio.create_task(hold(0, "a", 1))]
        await asyncio.sleep(0.01)
        tasks.append(asyncio.create_task(hold(1, "b", 2)))  # needs both slots
        await asyncio.sleep(0.01)
        tasks.append(asyncio.create_task(hold(2, "c", 1)))  # would fit in the free slot
        await asyncio.sleep(0.01)
        assert started == [0] and admission.queued == 3
        gates[0].set()
        await asyncio.sleep(0.01)
        assert started == [0, 1]  # the heavy one got its whole weight first
        gates[1].set()
        gates[2].set()
        await asyncio.wait_for(asyncio.gather(*tasks), 5)
        return started

    assert asyncio.run(scenario()) == [0, 1, 2]


def test_the_queue_limit_counts_weights():
    async def scenario():
        admission = Admission("m", slots=1, max_queue=3)
        gate = asyncio.Event()

        async def hold(tenant: str, weight: int = 1):
            async with admission.admit(tenant, weight=weight):
                await gate.wait()

        tasks = [asyncio.create_task(hold("a"))]
        await asyncio.sleep(0.01)
        tasks.append(asyncio.create_task(hold("a", weight=1)))
        tasks.append(asyncio.create_task(hold("a", weight=1)))
        await asyncio.sleep(0.01)
        # Weight is capped at the slot count (1 here): a third waiting place is still free.
        tasks.append(asyncio.create_task(hold("a", weight=5)))
        await asyncio.sleep(0.01)
        assert admission.queued == 3
        with pytest.raises(EngineUnavailable):
            async with admission.admit("a"):
                pass
        gate.set()
        await asyncio.wait_for(asyncio.gather(*tasks), 5)

    asyncio.run(scenario())
