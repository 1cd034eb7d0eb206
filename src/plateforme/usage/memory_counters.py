"""Rate counters in this gateway process's memory: exact sliding windows (the default, one gateway).

Each scope keeps its events of the last window; a scope with nothing in its window any more is
forgotten (at most once per window length, every window is checked), so memory stays bounded.
"""

import time
from collections import defaultdict, deque

from plateforme.usage.rate_scopes import WINDOW_S, Scope, refuse


class _Window:
    """Events (with a weight) in the last `length` seconds."""

    def __init__(self, length: float = WINDOW_S):
        self.length = length
        self.events: deque[tuple[float, int]] = deque()
        self.total = 0

    def _trim(self, now: float) -> None:
        while self.events and self.events[0][0] <= now - self.length:
            self.total -= self.events.popleft()[1]

    def empty(self, now: float) -> bool:
        self._trim(now)
        return not self.events

    def over(self, limit: int | None, now: float) -> float | None:
        """Seconds until the window drops below `limit`, or None when it is below already."""
        if limit is None:
            return None
        self._trim(now)
        if self.total < limit:
            return None
        running = self.total
        for moment, weight in self.events:
            running -= weight
            if running < limit:
                return moment + self.length - now
        return self.length

    def add(self, weight: int, now: float) -> None:
        self.events.append((now, weight))
        self.total += weight


class MemoryCounters:
    blocking = False  # plain memory: called on the event loop

    def __init__(self, window_s: float = WINDOW_S):
        self.window_s = window_s
        self._requests: dict[str, _Window] = defaultdict(lambda: _Window(window_s))
        self._tokens: dict[str, _Window] = defaultdict(lambda: _Window(window_s))
        self._next_sweep = time.monotonic() + window_s

    def close(self) -> None:
        """Nothing to release: the windows live in this process."""

    def tracked(self) -> int:
        """Windows held in memory (requests and tokens, per scope)."""
        return len(self._requests) + len(self._tokens)

    def _sweep(self, now: float) -> None:
        if now < self._next_sweep:
            return
        self._next_sweep = now + self.window_s
        for windows in (self._requests, self._tokens):
            for name in [name for name, window in windows.items() if window.empty(now)]:
                del windows[name]

    def hit(self, scopes: list[Scope]) -> None:
        """Count one request in every scope, or raise RateLimited (counting nothing) when one is full."""
        now = time.monotonic()
        self._sweep(now)
        for scope in scopes:
            wait = self._requests[scope.name].over(scope.rpm, now)
            if wait is not None:
                refuse(scope, "requests", wait)
            wait = self._tokens[scope.name].over(scope.tpm, now)
            if wait is not None:
                refuse(scope, "tokens", wait)
        for scope in scopes:
            self._requests[scope.name].add(1, now)

    def add_tokens(self, names: list[str], tokens: int) -> None:
        now = time.monotonic()
        self._sweep(now)
        for name in names:
            self._tokens[name].add(tokens, now)
