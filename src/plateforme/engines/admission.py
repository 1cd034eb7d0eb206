"""Admission control in front of one worker: bounded, and fair between workspaces.

At most `slots` requests run on the worker at once; up to `max_queue` more wait here, in one
FIFO per workspace, and are released to the workspace with the fewest requests running (ties in
round-robin order), so a workspace that floods a
model gets its turn like every other one instead of all the turns. When the queue is full, a
newcomer from a workspace holding fewer waiting places than the busiest one takes the busiest
one's newest place (that request gets 503 at once); otherwise the newcomer gets 503 at once.
Nothing ever waits unboundedly. All callers run on the gateway's event loop: no locks needed.
"""

import asyncio
from collections import Counter, deque
from contextlib import asynccontextmanager

from plateforme.engines.errors import EngineUnavailable

ANONYMOUS = "-"


class Admission:
    def __init__(self, model: str, slots: int, max_queue: int):
        self.model = model
        self.slots = slots
        self.max_queue = max_queue
        self.capacity = slots + max_queue
        self.running = 0
        self._running_by: Counter[str] = Counter()
        self._waiting: dict[str, deque[asyncio.Future]] = {}
        self._turns: deque[str] = deque()  # workspaces with waiters, in round-robin order

    @property
    def queued(self) -> int:
        return sum(len(q) for q in self._waiting.values())

    @property
    def in_flight(self) -> int:
        return self.running + self.queued

    def _full(self) -> EngineUnavailable:
        return EngineUnavailable(
            f"model {self.model!r} is at capacity ({self.slots} running, {self.max_queue} queued); "
            "retry shortly", retry_after_s=1)

    def _make_room(self, tenant: str) -> None:
        """Queue full: evict the newest waiter of the busiest other workspace, or refuse `tenant`."""
        mine = len(self._waiting.get(tenant, ()))
        busiest = max(self._waiting, key=lambda t: len(self._waiting[t]), default=None)
        if busiest is None or len(self._waiting[busiest]) <= mine + 1:
            raise self._full()
        evicted = self._waiting[busiest].pop()
        evicted.set_exception(self._full())
        self._forget(busiest)

    def _forget(self, tenant: str) -> None:
        if tenant in self._waiting and not self._waiting[tenant]:
            del self._waiting[tenant]
            self._turns.remove(tenant)

    def _start(self, tenant: str) -> None:
        self.running += 1
        self._running_by[tenant] += 1

    def _release(self, tenant: str) -> None:
        self.running -= 1
        # `tenant` still counts as running while the next one is chosen: it was just served.
        while self._turns and self.running < self.slots:
            chosen = min(self._turns, key=lambda t: self._running_by[t])
            self._turns.remove(chosen)
            future = self._waiting[chosen].popleft()
            if self._waiting[chosen]:
                self._turns.append(chosen)
            else:
                del self._waiting[chosen]
            if not future.done():
                self._start(chosen)
                future.set_result(None)
        self._running_by[tenant] -= 1
        if not self._running_by[tenant]:
            del self._running_by[tenant]

    @asynccontextmanager
    async def admit(self, tenant: str | None = None):
        tenant = tenant or ANONYMOUS
        if self.running < self.slots and not self._turns:
            self._start(tenant)
        else:
            if self.max_queue == 0:
                raise self._full()
            if self.queued >= self.max_queue:
                self._make_room(tenant)
            future = asyncio.get_running_loop().create_future()
            if tenant not in self._waiting:
                self._waiting[tenant] = deque()
                self._turns.append(tenant)
            self._waiting[tenant].append(future)
            try:
                await future
            except asyncio.CancelledError:
                if future.done() and not future.cancelled() and future.exception() is None:
                    self._release(tenant)  # the slot was handed over just as the caller went away
                elif future in self._waiting.get(tenant, ()):
                    self._waiting[tenant].remove(future)
                    self._forget(tenant)
                raise
        try:
            yield
        finally:
            self._release(tenant)
