"""Admission control in front of one worker: bounded, and fair between workspaces.

A request holds as many of the worker's `slots` as it runs generations at once (its `weight`:
a chat request with `n` choices decodes n sequences, so it takes n slots, at most all of them).
At most `slots` are held at once; requests worth up to `max_queue` more slots wait here, in one
FIFO per workspace, and are released to the workspace holding the fewest slots (ties in
round-robin order), so a workspace that floods a model gets its turn like every other one
instead of all the turns. The chosen request waits until its whole weight is free: nothing
overtakes it, so a large request is never starved by small ones. When the queue is full, a
newcomer from a workspace holding fewer waiting places than the busiest one takes the busiest
one's newest places (those requests get 503 at once); otherwise the newcomer gets 503 at once.
Nothing ever waits unboundedly. All callers run on the gateway's event loop: no locks needed.
"""

import asyncio
from collections import Counter, deque
from contextlib import asynccontextmanager

from plateforme.engines.errors import EngineUnavailable

ANONYMOUS = "-"


class _Waiter:
    __slots__ = ("future", "weight")

    def __init__(self, weight: int):
        self.future: asyncio.Future = asyncio.get_running_loop().create_future()
        self.weight = weight


class Admission:
    def __init__(self, model: str, slots: int, max_queue: int):
        self.model = model
        self.slots = slots
        self.max_queue = max_queue
        self.capacity = slots + max_queue
        self.running = 0  # slots held
        self._running_by: Counter[str] = Counter()
        self._waiting: dict[str, deque[_Waiter]] = {}
        self._turns: deque[str] = deque()  # workspaces with waiters, in round-robin order

    @property
    def queued(self) -> int:
        """Slots asked for by the requests waiting."""
        return sum(w.weight for q in self._waiting.values() for w in q)

    @property
    def in_flight(self) -> int:
        return self.running + self.queued

    def _full(self) -> EngineUnavailable:
        return EngineUnavailable(
            f"model {self.model!r} is at capacity ({self.slots} slots running, {self.max_queue} queued); "
            "retry shortly", retry_after_s=1)

    def _queued_by(self, tenant: str) -> int:
        return sum(w.weight for w in self._waiting.get(tenant, ()))

    def _make_room(self, tenant: str, weight: int) -> None:
        """Queue full: evict the newest waiters of the busiest other workspace, or refuse `tenant`."""
        mine = self._queued_by(tenant) + weight
        while self.queued + weight > self.max_queue:
            busiest = max(self._waiting, key=self._queued_by, default=None)
            if busiest is None or busiest == tenant or self._queued_by(busiest) <= mine:
                raise self._full()
            evicted = self._waiting[busiest].pop()
            evicted.future.set_exception(self._full())
            self._forget(busiest)

    def _forget(self, tenant: str) -> None:
        if tenant in self._waiting and not self._waiting[tenant]:
            del self._waiting[tenant]
            self._turns.remove(tenant)

    def _start(self, tenant: str, weight: int) -> None:
        self.running += weight
        self._running_by[tenant] += weight

    def _hand_over(self) -> None:
        """Start waiting requests while their turn's weight fits in the free slots."""
        while self._turns:
            chosen = min(self._turns, key=lambda t: self._running_by[t])
            head = self._waiting[chosen][0]
            if head.future.done():  # given up or evicted meanwhile
                self._waiting[chosen].popleft()
                self._forget(chosen)
                continue
            if self.running + head.weight > self.slots:
                return  # nothing overtakes the chosen request: it waits for its whole weight
            self._turns.remove(chosen)
            self._waiting[chosen].popleft()
            if self._waiting[chosen]:
                self._turns.append(chosen)
            else:
                del self._waiting[chosen]
            self._start(chosen, head.weight)
            head.future.set_result(None)

    def _release(self, tenant: str, weight: int) -> None:
        self.running -= weight
        # `tenant` still counts as running while the next one is chosen: it was just served.
        self._hand_over()
        self._running_by[tenant] -= weight
        if self._running_by[tenant] <= 0:
            del self._running_by[tenant]

    @asynccontextmanager
    async def admit(self, tenant: str | None = None, weight: int = 1):
        """Hold `weight` slots (at least 1, at most all of them) for the duration of the block."""
        tenant = tenant or ANONYMOUS
        weight = max(1, min(weight, self.slots))
        if self.running + weight <= self.slots and not self._turns:
            self._start(tenant, weight)
        else:
            if self.max_queue == 0:
                raise self._full()
            if self.queued + weight > self.max_queue and self.queued:
                self._make_room(tenant, weight)  # a lone waiter is always let in, whatever its weight
            waiter = _Waiter(weight)
            if tenant not in self._waiting:
                self._waiting[tenant] = deque()
                self._turns.append(tenant)
            self._waiting[tenant].append(waiter)
            try:
                await waiter.future
            except asyncio.CancelledError:
                future = waiter.future
                if future.done() and not future.cancelled() and future.exception() is None:
                    self._release(tenant, weight)  # the slots were handed over just as the caller went away
                elif waiter in self._waiting.get(tenant, ()):
                    self._waiting[tenant].remove(waiter)
                    self._forget(tenant)
                    self._hand_over()  # a heavy head that left may have been holding others back
                raise
        try:
            yield
        finally:
            self._release(tenant, weight)
