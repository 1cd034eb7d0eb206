"""Whether a workspace captures its chat completions: read from its row, cached a moment.

The admin API drops the cached answer when it changes the switch (`forget`), so the change
applies at once; a change made by the CLI in another process applies within CACHE_SECONDS.
"""

import asyncio
import time

from sqlalchemy import select

from plateforme.storage.database import Database
from plateforme.storage.tables import Workspace

CACHE_SECONDS = 2.0


class CaptureSwitch:
    def __init__(self, db: Database):
        self.db = db
        self._cache: dict[str, tuple[float, bool]] = {}
        self._forgotten = 0  # a read that started before a `forget` must not refill the cache

    def forget(self, workspace_id: str) -> None:
        self._forgotten += 1
        self._cache.pop(workspace_id, None)

    def read(self, workspace_id: str) -> bool:
        with self.db.session() as s:
            return bool(s.scalar(select(Workspace.capture_traces).where(Workspace.id == workspace_id)))

    async def enabled(self, workspace_id: str) -> bool:
        cached = self._cache.get(workspace_id)
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        forgotten = self._forgotten
        value = await asyncio.to_thread(self.read, workspace_id)
        if forgotten == self._forgotten:
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[workspace_id] = (time.monotonic() + CACHE_SECONDS, value)
        return value
