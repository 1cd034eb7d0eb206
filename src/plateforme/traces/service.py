"""The traces capability for one gateway: opt-in capture, feedback, and dataset export."""

import asyncio
import logging
from datetime import datetime

from plateforme.files.service import FileService
from plateforme.storage.database import Database
from plateforme.storage.tables import StoredFile
from plateforme.storage.trace_tables import ChatTrace
from plateforme.tenancy.principal import Principal
from plateforme.traces import feedback
from plateforme.traces.capture import Capture
from plateforme.traces.dataset import KINDS
from plateforme.traces.export import ExportCount, export_to_files
from plateforme.traces.recorder import TraceRecorder
from plateforme.traces.switch import CaptureSwitch

log = logging.getLogger("plateforme.traces")


class TraceService:
    def __init__(self, db: Database, files: FileService):
        self.db, self.files = db, files
        self.switch = CaptureSwitch(db)
        self.recorder = TraceRecorder(db)

    def forget(self, workspace_id: str) -> None:
        """The workspace's capture switch changed: apply it from the next request on."""
        self.switch.forget(workspace_id)

    async def begin(self, who: Principal, completion_id: str, model: str, created: int, stream: bool,
                    request_body) -> Capture | None:
        """A Capture when `who`'s workspace captures traces, else None (also when the check fails).

        `request_body` is the validated request (a pydantic model), dumped only when capturing.
        """
        try:
            if not await self.switch.enabled(who.workspace_id):
                return None
            request = request_body.model_dump(mode="json", exclude_unset=True)
            return Capture(self.recorder, who, completion_id, model, created, request, stream)
        except Exception:
            log.exception("trace capture skipped for %s", completion_id)
            return None

    async def give_feedback(self, who: Principal, completion_id: str, rating: int, corrected_answer: str | None,
                            comment: str | None) -> ChatTrace:
        await self.recorder.flush(completion_id)  # its trace may still be on its way to the database
        return await asyncio.to_thread(feedback.give_feedback, self.db, who.workspace_id, completion_id, rating,
                                       corrected_answer, comment)

    async def export(self, who: Principal, since: datetime | None = None,
                     include: tuple[str, ...] = KINDS) -> tuple[StoredFile, ExportCount]:
        await self.recorder.flush()
        return await asyncio.to_thread(export_to_files, self.db, self.files, who, since, include)
