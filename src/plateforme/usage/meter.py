"""Record every billable call's tokens, and report them by day and by model."""

from datetime import datetime

from sqlalchemy import Integer, cast, func, select

from plateforme.storage.database import Database
from plateforme.storage.tables import UsageRecord
from plateforme.tenancy.ids import utcnow
from plateforme.tenancy.principal import Principal


class UsageMeter:
    def __init__(self, db: Database):
        self.db = db

    def record(self, who: Principal, model: str, route: str, request_id: str, prompt_tokens: int,
               completion_tokens: int, blocked: bool = False, guardrail_tokens: int = 0) -> None:
        """One row per request, in one transaction: it is either fully there or not at all."""
        now = utcnow()
        with self.db.session() as s:
            s.add(UsageRecord(request_id=request_id, workspace_id=who.workspace_id, api_key_id=who.key_id,
                              model=model, route=route, prompt_tokens=prompt_tokens,
                              completion_tokens=completion_tokens, blocked=blocked,
                              guardrail_tokens=guardrail_tokens, day=now.date().isoformat(), created_at=now))
            s.commit()

    def summary(self, group: str, workspace_id: str | None, start: str | None = None,
                end: str | None = None) -> list[dict]:
        """Token sums grouped by "day" or "model" (and workspace when `workspace_id` is None),
        for days in [start, end] (YYYY-MM-DD, inclusive); with the requests guards blocked and the
        tokens guardrails read."""
        key = UsageRecord.day if group == "day" else UsageRecord.model
        columns = [key, func.count(), func.sum(UsageRecord.prompt_tokens), func.sum(UsageRecord.completion_tokens),
                   func.sum(cast(UsageRecord.blocked, Integer)), func.sum(UsageRecord.guardrail_tokens)]
        grouping = [key]
        if workspace_id is None:
            columns.insert(0, UsageRecord.workspace_id)
            grouping.insert(0, UsageRecord.workspace_id)
        query = select(*columns).group_by(*grouping).order_by(*grouping)
        if workspace_id is not None:
            query = query.where(UsageRecord.workspace_id == workspace_id)
        if start:
            query = query.where(UsageRecord.day >= start)
        if end:
            query = query.where(UsageRecord.day <= end)
        with self.db.session() as s:
            rows = s.execute(query).all()
        out = []
        for row in rows:
            *ws, name, requests, prompt, completion, blocked, guardrail = row
            item = {group: name, "requests": requests, "prompt_tokens": int(prompt or 0),
                    "completion_tokens": int(completion or 0), "total_tokens": int((prompt or 0) + (completion or 0)),
                    "blocked_requests": int(blocked or 0), "guardrail_tokens": int(guardrail or 0)}
            if ws:
                item["workspace_id"] = ws[0]
            out.append(item)
        return out

    def tokens_since(self, workspace_id: str, since: datetime) -> int:
        query = (select(func.sum(UsageRecord.prompt_tokens + UsageRecord.completion_tokens
                                 + UsageRecord.guardrail_tokens))
                 .where(UsageRecord.workspace_id == workspace_id, UsageRecord.created_at >= since))
        with self.db.session() as s:
            return int(s.scalar(query) or 0)
