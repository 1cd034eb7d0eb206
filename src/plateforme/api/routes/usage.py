"""GET /v1/usage: the caller's workspace's tokens by day or by model (all workspaces for admins)."""

import datetime as dt
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from plateforme.api.auth import require_admin

router = APIRouter()


class UsageRow(BaseModel):
    workspace_id: str | None = None
    day: str | None = None
    model: str | None = None
    requests: int
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    # Requests a guardrail refused (403, no generation), and the tokens guardrails' checks read.
    blocked_requests: int = 0
    guardrail_tokens: int = 0


class UsageReport(BaseModel):
    object: Literal["usage"] = "usage"
    group_by: Literal["day", "model"]
    start: dt.date | None = None
    end: dt.date | None = None
    data: list[UsageRow]


GroupBy = Annotated[Literal["day", "model"], Query()]


async def _report(request: Request, workspace_id: str | None, group_by: str, start, end) -> UsageReport:
    meter = request.app.state.billing.meter
    rows = await run_in_threadpool(meter.summary, group_by, workspace_id, start and start.isoformat(),
                                   end and end.isoformat())
    return UsageReport(group_by=group_by, start=start, end=end, data=[UsageRow(**r) for r in rows])


@router.get("/v1/usage", response_model=UsageReport, response_model_exclude_none=True)
async def workspace_usage(request: Request, group_by: GroupBy = "day", start: dt.date | None = None,
                          end: dt.date | None = None) -> UsageReport:
    return await _report(request, request.state.principal.workspace_id, group_by, start, end)


@router.get("/v1/admin/usage", response_model=UsageReport, response_model_exclude_none=True)
async def all_usage(request: Request, group_by: GroupBy = "day", start: dt.date | None = None,
                    end: dt.date | None = None, workspace: str | None = None) -> UsageReport:
    require_admin(request)
    workspace_id = (await run_in_threadpool(request.app.state.accounts.workspace, workspace)).id if workspace else None
    return await _report(request, workspace_id, group_by, start, end)
