"""Export a workspace's liked and corrected traces as a fine-tuning JSONL file (or its lines).

Traces of blocked requests (guardrails) are never exported: what a guardrail refused is not
training data, whatever its rating.
"""

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import or_, select

from plateforme.files.service import FileService
from plateforme.storage.database import Database
from plateforme.storage.tables import StoredFile
from plateforme.storage.trace_tables import ChatTrace
from plateforme.tenancy.ids import utcnow
from plateforme.tenancy.principal import Principal
from plateforme.traces.dataset import KINDS, kind_of, training_line
from plateforme.traces.errors import NothingToExport

BATCH = 200  # traces read from the database at a time


@dataclass
class ExportCount:
    liked: int = 0
    corrected: int = 0

    @property
    def lines(self) -> int:
        return self.liked + self.corrected


def export_lines(db: Database, workspace_id: str, since: datetime | None = None,
                 include: tuple[str, ...] = KINDS, count: ExportCount | None = None) -> Iterator[str]:
    """JSONL lines (with their newline), oldest trace first; `count` is updated as they go."""
    if since is not None:  # stored times are UTC (SQLite keeps them without their offset)
        since = since.replace(tzinfo=UTC) if since.tzinfo is None else since.astimezone(UTC)
    query = (select(ChatTrace.request, ChatTrace.response, ChatTrace.rating, ChatTrace.corrected_answer)
             .where(ChatTrace.workspace_id == workspace_id, ChatTrace.blocked.is_(False),
                    or_(ChatTrace.rating == 1, ChatTrace.corrected_answer.is_not(None)))
             .order_by(ChatTrace.created_at, ChatTrace.id))
    if since is not None:
        query = query.where(ChatTrace.created_at >= since)
    with db.session() as s:
        for request, response, rating, corrected in s.execute(query.execution_options(yield_per=BATCH)):
            kind = kind_of(rating, corrected)
            if kind not in include:
                continue
            if count is not None:
                setattr(count, kind, getattr(count, kind) + 1)
            yield json.dumps(training_line(request, response, corrected), ensure_ascii=False) + "\n"


def export_to_files(db: Database, files: FileService, who: Principal, since: datetime | None = None,
                    include: tuple[str, ...] = KINDS) -> tuple[StoredFile, ExportCount]:
    """Store the export as a `fine-tune` file of `who`'s workspace; NothingToExport when it would be empty."""
    count = ExportCount()
    lines = export_lines(db, who.workspace_id, since, include, count)
    first = next(lines, None)
    if first is None:
        kinds = " or ".join(include)
        raise NothingToExport(
            f"No {kinds} traces to export in this workspace{f' since {since.isoformat()}' if since else ''}: "
            "rate captured completions with POST /v1/chat/completions/{completion_id}/feedback "
            "(rating 1, or a corrected_answer) first.")

    def chunks() -> Iterator[bytes]:
        yield first.encode()
        for line in lines:
            yield line.encode()

    name = f"traces-{utcnow().strftime('%Y%m%dT%H%M%SZ')}.jsonl"
    record = files.upload(who, name, "fine-tune", chunks(), "application/jsonl")
    return record, count
