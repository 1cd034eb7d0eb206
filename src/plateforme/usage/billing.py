"""The gate and the ledger of billable calls: limits checked before, tokens recorded after."""

import asyncio
import functools
import logging
import time

from starlette.concurrency import run_in_threadpool

from plateforme.storage.database import Database
from plateforme.storage.tables import Workspace
from plateforme.tenancy.accounts import Accounts
from plateforme.tenancy.principal import Principal
from plateforme.usage.database_counters import DatabaseCounters
from plateforme.usage.limits import Limiter
from plateforme.usage.meter import UsageMeter

# Workspace limits are re-read this often; changes through the admin API apply at once on the
# gateway that made them (`forget`), on other replicas and from the CLI within this delay.
WORKSPACE_CACHE_SECONDS = 30.0
# With shared counters (several replicas), a budget's spend is re-read this often.
BUDGET_REFRESH_SECONDS = 5.0
LIMITS_BACKENDS = ("auto", "memory", "database")
log = logging.getLogger("plateforme.usage")


def shared_limits(db: Database, backend: str) -> bool:
    """Whether rate counters live in the database: `database`, or `auto` on PostgreSQL."""
    if backend not in LIMITS_BACKENDS:
        raise ValueError(f"PLATEFORME_LIMITS_BACKEND={backend!r}: expected one of {', '.join(LIMITS_BACKENDS)}")
    return backend == "database" or (backend == "auto" and db.engine.dialect.name == "postgresql")


def _report_failed_reread(what: str, workspace_id: str, done: asyncio.Future) -> None:
    """Log a background re-read of the workspace's `what` that failed (the last one read still applies)."""
    if not done.cancelled() and done.exception() is not None:
        log.error("could not re-read the %s of workspace %s (%s); the last one read still applies, "
                  "and the next request retries", what, workspace_id, done.exception())


class Billing:
    def __init__(self, db: Database, limits_backend: str = "auto"):
        """`limits_backend` (PLATEFORME_LIMITS_BACKEND): `memory` (this process), `database` (shared by
        the replicas on the database), or `auto`: database on PostgreSQL, memory otherwise."""
        self.meter = UsageMeter(db)
        shared = shared_limits(db, limits_backend)
        self.limiter = Limiter(self.meter.tokens_since, counters=DatabaseCounters(db) if shared else None,
                               budget_refresh_s=BUDGET_REFRESH_SECONDS if shared else None)
        self._accounts = Accounts(db)
        self._workspaces: dict[str, tuple[float, Workspace]] = {}
        self._loading: dict[str, asyncio.Future] = {}
        self._budget_loading: dict[str, asyncio.Future] = {}

    def close(self) -> None:
        """Release the shared counters' connections (on shutdown)."""
        self.limiter.counters.close()

    def forget(self, workspace_id: str) -> None:
        """Drop the cached limits of a workspace (after an admin changed them)."""
        self._workspaces.pop(workspace_id, None)

    def _load(self, workspace_id: str) -> asyncio.Future:
        """One database read per workspace at a time, however many requests ask together."""
        pending = self._loading.get(workspace_id)
        if pending is None:
            async def load() -> Workspace:
                try:
                    workspace = await run_in_threadpool(self._accounts.workspace, workspace_id)
                    self._workspaces[workspace_id] = (time.monotonic() + WORKSPACE_CACHE_SECONDS, workspace)
                    return workspace
                finally:
                    self._loading.pop(workspace_id, None)

            pending = self._loading[workspace_id] = asyncio.ensure_future(load())
        return pending

    async def _workspace(self, workspace_id: str) -> Workspace:
        cached = self._workspaces.get(workspace_id)
        if cached is None:
            return await asyncio.shield(self._load(workspace_id))
        if cached[0] < time.monotonic() and workspace_id not in self._loading:
            # Stale: answer from it while it is re-read in the background; a failed re-read is
            # reported and retried on the next request, the cached limits still apply meanwhile.
            self._load(workspace_id).add_done_callback(
                functools.partial(_report_failed_reread, "limits", workspace_id))
        return cached[1]

    def _refresh_budget(self, workspace: Workspace) -> None:
        """Re-read the spend in the background (one read per workspace at a time)."""
        if workspace.id in self._budget_loading:
            return
        task = asyncio.ensure_future(run_in_threadpool(self.limiter.load_budget, workspace))
        self._budget_loading[workspace.id] = task
        task.add_done_callback(lambda _: self._budget_loading.pop(workspace.id, None))
        task.add_done_callback(functools.partial(_report_failed_reread, "token budget spend", workspace.id))

    async def admit(self, who: Principal) -> None:
        """Raise limits.RateLimited when `who` is over a request, token or budget limit; otherwise
        count the request (in the database with shared counters: one round trip, in the thread pool)."""
        workspace = await self._workspace(who.workspace_id)
        if workspace.token_budget is not None:
            if self.limiter.needs_budget(workspace):
                await run_in_threadpool(self.limiter.load_budget, workspace)
            elif self.limiter.budgets.stale(workspace):
                self._refresh_budget(workspace)
        if self.limiter.blocking:
            await run_in_threadpool(self.limiter.check, who, workspace)
        else:
            self.limiter.check(who, workspace)

    def _record(self, who: Principal, model: str, route: str, request_id: str, prompt_tokens: int,
                completion_tokens: int, blocked: bool = False, guardrail_tokens: int = 0) -> None:
        self.meter.record(who, model, route, request_id, prompt_tokens, completion_tokens, blocked, guardrail_tokens)
        try:
            self.limiter.add_tokens(who, prompt_tokens + completion_tokens + guardrail_tokens)
        except Exception:  # the usage row is written: the request is billed, only the window misses it
            log.exception("tokens of request %s could not be added to the shared rate counters", request_id)

    async def record(self, who: Principal, model: str, route: str, request_id: str, prompt_tokens: int,
                     completion_tokens: int, blocked: bool = False, guardrail_tokens: int = 0) -> None:
        """One request's usage row. `blocked`: a guard refused it (no tokens: before generation) or
        withheld its answer; `guardrail_tokens`: what its guardrails read, counted in the limits too."""
        if self.limiter.blocking:  # the usage row, then the shared counters: one trip to the thread pool
            await run_in_threadpool(self._record, who, model, route, request_id, prompt_tokens,
                                    completion_tokens, blocked, guardrail_tokens)
            return
        self.limiter.add_tokens(who, prompt_tokens + completion_tokens + guardrail_tokens)
        await run_in_threadpool(self.meter.record, who, model, route, request_id, prompt_tokens,
                                completion_tokens, blocked, guardrail_tokens)
