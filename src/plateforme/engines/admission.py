"""Admission control in front of one worker: a bounded number of requests in flight."""

from contextlib import contextmanager

from plateforme.engines.errors import EngineUnavailable


class Admission:
    """Admit up to `slots + max_queue` requests; refuse the rest at once instead of queueing forever.

    All callers run on the gateway's event loop, so a plain counter is race-free.
    """

    def __init__(self, model: str, slots: int, max_queue: int):
        self.model = model
        self.slots = slots
        self.capacity = slots + max_queue
        self.in_flight = 0

    @property
    def queued(self) -> int:
        return max(0, self.in_flight - self.slots)

    @contextmanager
    def admit(self):
        if self.in_flight >= self.capacity:
            raise EngineUnavailable(
                f"model {self.model!r} is at capacity ({self.slots} running, "
                f"{self.capacity - self.slots} queued); retry shortly",
                retry_after_s=1,
            )
        self.in_flight += 1
        try:
            yield
        finally:
            self.in_flight -= 1
