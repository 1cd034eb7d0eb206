"""Token budgets per day or month per workspace, read from the usage records.

The spend of a workspace's current period is read from the database once, then kept up to date
by this gateway's own usage. With several replicas (`refresh_s` set), each one re-reads it in the
background at most every `refresh_s` seconds, so the others' usage counts within that delay.
"""

import time
from datetime import UTC, datetime

from plateforme.storage.tables import Workspace
from plateforme.usage.rate_scopes import RateLimited


def period_start(period: str, now: datetime) -> datetime:
    if period == "day":
        return now.replace(hour=0, minute=0, second=0, microsecond=0)
    return now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def period_end(period: str, now: datetime) -> datetime:
    start = period_start(period, now)
    if period == "day":
        return datetime.fromtimestamp(start.timestamp() + 86400, UTC)
    return start.replace(year=start.year + (start.month == 12), month=start.month % 12 + 1)


class Budgets:
    def __init__(self, tokens_since, refresh_s: float | None = None):
        self._tokens_since = tokens_since  # (workspace_id, since) -> tokens recorded in the database
        self.refresh_s = refresh_s
        self._used: dict[str, tuple[datetime, int, float]] = {}  # id -> (period start, tokens, read at)

    def needs_load(self, workspace: Workspace) -> bool:
        """Whether the spend must be read before this request (never read, or a new period)."""
        cached = self._used.get(workspace.id)
        return cached is None or cached[0] != period_start(workspace.budget_period, datetime.now(UTC))

    def stale(self, workspace: Workspace) -> bool:
        """Whether the spend should be re-read in the background (other replicas spend too)."""
        cached = self._used.get(workspace.id)
        return self.refresh_s is not None and cached is not None and time.monotonic() - cached[2] > self.refresh_s

    def load(self, workspace: Workspace) -> None:
        """Read the workspace's spend in its current period from the database (blocking)."""
        start = period_start(workspace.budget_period, datetime.now(UTC))
        self._used[workspace.id] = (start, self._tokens_since(workspace.id, start), time.monotonic())

    def check(self, workspace: Workspace) -> None:
        if workspace.token_budget is None:
            return
        used = self._used[workspace.id][1] if workspace.id in self._used else 0
        if used >= workspace.token_budget:
            reset = period_end(workspace.budget_period, datetime.now(UTC))
            raise RateLimited(
                f"workspace token budget of {workspace.token_budget} per {workspace.budget_period} is spent "
                f"({used} used); it renews at {reset.isoformat(timespec='seconds')}",
                int(reset.timestamp() - time.time()) + 1)

    def add(self, workspace_id: str, tokens: int) -> None:
        cached = self._used.get(workspace_id)
        if cached is not None:
            self._used[workspace_id] = (cached[0], cached[1] + tokens, cached[2])
