"""Requests per minute, tokens per minute (per key and per workspace) and token budgets per period.

Windows are kept in this gateway process's memory (one gateway per database: several gateway
nodes each enforce the limits on their own share); a key or workspace with nothing in its window
any more is forgotten (at most once per window length, every window is checked). Budgets start
from the database's usage records, so they survive restarts.
"""

import time
from collections import defaultdict, deque
from datetime import UTC, datetime

from plateforme.storage.tables import Workspace
from plateforme.tenancy.principal import Principal

WINDOW_S = 60.0


class RateLimited(Exception):
    def __init__(self, message: str, retry_after_s: int):
        super().__init__(message)
        self.retry_after_s = max(1, retry_after_s)


def period_start(period: str, now: datetime) -> datetime:
    if period == "day":
        return now.replace(hour=0, minute=0, second=0, microsecond=0)
    return now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def period_end(period: str, now: datetime) -> datetime:
    start = period_start(period, now)
    if period == "day":
        return datetime.fromtimestamp(start.timestamp() + 86400, UTC)
    return start.replace(year=start.year + (start.month == 12), month=start.month % 12 + 1)


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


class Limiter:
    def __init__(self, tokens_since, window_s: float = WINDOW_S):
        self.window_s = window_s
        self._requests: dict[str, _Window] = defaultdict(lambda: _Window(window_s))
        self._tokens: dict[str, _Window] = defaultdict(lambda: _Window(window_s))
        self._tokens_since = tokens_since  # (workspace_id, since) -> tokens recorded in the database
        self._budget_used: dict[str, tuple[datetime, int]] = {}
        self._next_sweep = time.monotonic() + window_s

    def tracked(self) -> int:
        """Windows held in memory (requests and tokens, per key and per workspace)."""
        return len(self._requests) + len(self._tokens)

    def _sweep(self, now: float) -> None:
        """Forget the windows with nothing left in them (amortised: once per window length)."""
        if now < self._next_sweep:
            return
        self._next_sweep = now + self.window_s
        for windows in (self._requests, self._tokens):
            for scope in [scope for scope, window in windows.items() if window.empty(now)]:
                del windows[scope]

    def check(self, who: Principal, workspace: Workspace) -> None:
        """Raise RateLimited when this request may not start now; otherwise count it."""
        now = time.monotonic()
        self._sweep(now)
        scopes = [(f"ws:{who.workspace_id}", workspace.requests_per_minute, workspace.tokens_per_minute, "workspace")]
        if who.key_id:
            scopes.append((f"key:{who.key_id}", who.requests_per_minute, who.tokens_per_minute, "API key"))
        for scope, rpm, tpm, label in scopes:
            wait = self._requests[scope].over(rpm, now)
            if wait is not None:
                raise RateLimited(f"{label} limit of {rpm} requests per minute reached", int(wait) + 1)
            wait = self._tokens[scope].over(tpm, now)
            if wait is not None:
                raise RateLimited(f"{label} limit of {tpm} tokens per minute reached", int(wait) + 1)
        if workspace.token_budget is not None:
            used = self._budget_used[workspace.id][1] if workspace.id in self._budget_used else 0
            if used >= workspace.token_budget:
                reset = period_end(workspace.budget_period, datetime.now(UTC))
                raise RateLimited(
                    f"workspace token budget of {workspace.token_budget} per {workspace.budget_period} is spent "
                    f"({used} used); it renews at {reset.isoformat(timespec='seconds')}",
                    int(reset.timestamp() - time.time()) + 1)
        for scope, *_ in scopes:
            self._requests[scope].add(1, now)

    def needs_budget(self, workspace: Workspace) -> bool:
        """Whether the workspace's spend in its current period must be read (load_budget)."""
        cached = self._budget_used.get(workspace.id)
        return cached is None or cached[0] != period_start(workspace.budget_period, datetime.now(UTC))

    def load_budget(self, workspace: Workspace) -> None:
        """Read the workspace's spend in its current period from the database (blocking)."""
        start = period_start(workspace.budget_period, datetime.now(UTC))
        self._budget_used[workspace.id] = (start, self._tokens_since(workspace.id, start))

    def add_tokens(self, who: Principal, tokens: int) -> None:
        now = time.monotonic()
        self._sweep(now)
        self._tokens[f"ws:{who.workspace_id}"].add(tokens, now)
        if who.key_id:
            self._tokens[f"key:{who.key_id}"].add(tokens, now)
        cached = self._budget_used.get(who.workspace_id)
        if cached is not None:
            self._budget_used[who.workspace_id] = (cached[0], cached[1] + tokens)
