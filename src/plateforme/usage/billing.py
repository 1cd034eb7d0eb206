"""The gate and the ledger of billable calls: limits checked before, tokens recorded after."""

import time

from starlette.concurrency import run_in_threadpool

from plateforme.storage.database import Database
from plateforme.storage.tables import Workspace
from plateforme.tenancy.accounts import Accounts
from plateforme.tenancy.principal import Principal
from plateforme.usage.limits import Limiter
from plateforme.usage.meter import UsageMeter

WORKSPACE_CACHE_SECONDS = 5.0


class Billing:
    def __init__(self, db: Database):
        self.meter = UsageMeter(db)
        self.limiter = Limiter(self.meter.tokens_since)
        self._accounts = Accounts(db)
        self._workspaces: dict[str, tuple[float, Workspace]] = {}

    async def _workspace(self, workspace_id: str) -> Workspace:
        cached = self._workspaces.get(workspace_id)
        if cached is None or cached[0] < time.monotonic():
            workspace = await run_in_threadpool(self._accounts.workspace, workspace_id)
            cached = (time.monotonic() + WORKSPACE_CACHE_SECONDS, workspace)
            self._workspaces[workspace_id] = cached
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
