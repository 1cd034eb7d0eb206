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
from plateforme.usage.limits import Limiter
from plateforme.usage.meter import UsageMeter

# Workspace limits are re-read this often; changes through the admin API apply at once
# (`forget`), changes made by the CLI in another process within this delay.
WORKSPACE_CACHE_SECONDS = 30.0
log = logging.getLogger("plateforme.usage")


def _report_refresh(workspace_id: str, done: asyncio.Future) -> None:
    if not done.cancelled() and done.exception() is not None:
        log.error("could not re-read the limits of workspace %s (%s); the cached limits still apply, "
                  "and the next request retries", workspace_id, done.exception())


class Billing:
    def __init__(self, db: Database):
        self.meter = UsageMeter(db)
        self.limiter = Limiter(self.meter.tokens_since)
        self._accounts = Accounts(db)
        self._workspaces: dict[str, tuple[float, Workspace]] = {}
        self._loading: dict[str, asyncio.Future] = {}

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
            self._load(workspace_id).add_done_callback(functools.partial(_report_refresh, workspace_id))
        return cached[1]

    async def admit(self, who: Principal) -> None:
        """Raise limits.RateLimited when `who` is over a request, token or budget limit."""
        workspace = await self._workspace(who.workspace_id)
        if workspace.token_budget is not None and self.limiter.needs_budget(workspace):
            await run_in_threadpool(self.limiter.load_budget, workspace)
        self.limiter.check(who, workspace)

    async def record(self, who: Principal, model: str, route: str, request_id: str, prompt_tokens: int,
                     completion_tokens: int) -> None:
        self.limiter.add_tokens(who, prompt_tokens + completion_tokens)
        await run_in_threadpool(self.meter.record, who, model, route, request_id, prompt_tokens,
                                completion_tokens)
