"""Write traces off the latency path: each one in a worker thread, after its answer is complete.

Writes still in flight are tracked so that reads in this gateway (feedback, export) can wait for
them: a client that rates a completion right after receiving it finds its trace. A failed write
is logged and never reaches the caller, whose completion was already answered.
"""

import asyncio
import logging

from plateforme.storage.database import Database
from plateforme.storage.trace_tables import ChatTrace
from plateforme.tenancy.ids import utcnow

log = logging.getLogger("plateforme.traces")


class TraceRecorder:
    def __init__(self, db: Database):
        self.db = db
        self._pending: dict[str, asyncio.Task] = {}  # completion id -> its write

    def save(self, trace: ChatTrace) -> None:
        trace.created_at = trace.created_at or utcnow()
        with self.db.session() as s:
            s.add(trace)
            s.commit()

    def save_later(self, trace: ChatTrace) -> None:
        """Schedule the write and return at once."""
        task = asyncio.get_running_loop().create_task(asyncio.to_thread(self.save, trace))
        key = trace.completion_id
        self._pending[key] = task
        task.add_done_callback(lambda done: self._finished(key, done))

    def _finished(self, key: str, task: asyncio.Task) -> None:
        if self._pending.get(key) is task:
            del self._pending[key]
        if not task.cancelled() and task.exception() is not None:
            log.error("could not store the trace of %s: %s", key, task.exception(), exc_info=task.exception())

    async def flush(self, completion_id: str | None = None) -> None:
        """Wait for the write of `completion_id` (of every pending trace when None); never raises."""
        tasks = [self._pending[completion_id]] if completion_id in self._pending else \
            list(self._pending.values()) if completion_id is None else []
        if tasks:
            await asyncio.wait(tasks)  # waiting never cancels the writes
