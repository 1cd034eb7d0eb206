"""Requests per minute, tokens per minute (per key and per workspace) and token budgets per period.

The rate windows live in a counter backend: this process's memory (`MemoryCounters`, exact
sliding windows; the default with one gateway) or the database (`DatabaseCounters`, shared by
every replica on it; the default on PostgreSQL). Budgets start from the database's usage
records, so they survive restarts (usage/budgets.py).
"""

from plateforme.storage.tables import Workspace
from plateforme.tenancy.principal import Principal
from plateforme.usage.budgets import Budgets, period_end, period_start
from plateforme.usage.memory_counters import MemoryCounters
from plateforme.usage.rate_scopes import WINDOW_S, RateLimited, scope_names, scopes_of

__all__ = ["Limiter", "RateLimited", "WINDOW_S", "period_end", "period_start"]


class Limiter:
    def __init__(self, tokens_since, window_s: float = WINDOW_S, counters=None,
                 budget_refresh_s: float | None = None):
        """`counters`: MemoryCounters (default) or DatabaseCounters; `budget_refresh_s`: how often a
        budget's spend is re-read (None: never, this gateway sees all the usage)."""
        self.counters = counters if counters is not None else MemoryCounters(window_s)
        self.budgets = Budgets(tokens_since, budget_refresh_s)

    @property
    def blocking(self) -> bool:
        """Whether check and add_tokens do I/O (run them in the thread pool)."""
        return self.counters.blocking

    def tracked(self) -> int:
        """Windows held in this process's memory (requests and tokens, per key and per workspace)."""
        return self.counters.tracked()

    def check(self, who: Principal, workspace: Workspace) -> None:
        """Raise RateLimited when this request may not start now; otherwise count it."""
        self.budgets.check(workspace)
        self.counters.hit(scopes_of(who, workspace))

    def needs_budget(self, workspace: Workspace) -> bool:
        """Whether the workspace's spend in its current period must be read (load_budget) first."""
        return self.budgets.needs_load(workspace)

    def load_budget(self, workspace: Workspace) -> None:
        self.budgets.load(workspace)

    def add_tokens(self, who: Principal, tokens: int) -> None:
        self.counters.add_tokens(scope_names(who), tokens)
        self.budgets.add(who.workspace_id, tokens)
