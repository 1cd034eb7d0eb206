"""The ingestion runner: takes waiting documents (oldest first, `workers` at a time), keeps their
leases alive while it works, queues again the documents whose runner is gone, and deletes the
documents past their expires_at.

It is the fine-tuning runner's pattern (fine_tuning/runner.py), on documents: a background task of
the gateway's event loop that does no blocking work itself (database calls in threads, parsing in
worker processes). Several gateway replicas may each run one on one database (ingestion_queue.py).
"""

import asyncio
import logging
import time

from plateforme.libraries.documents import DocumentService
from plateforme.libraries.ingestion import DocumentIngestion, Outcome
from plateforme.libraries.ingestion_queue import IngestionQueue

log = logging.getLogger("plateforme.libraries")
POLL_S = 2.0
LEASE_S = 30.0
EXPIRY_SWEEP_S = 60.0


class IngestionRunner:
    def __init__(self, queue: IngestionQueue, ingestion: DocumentIngestion, documents: DocumentService,
                 workers: int, poll_s: float = POLL_S):
        self.queue, self.ingestion, self.documents = queue, ingestion, documents
        self.workers = max(1, workers)
        self.poll_s = poll_s
        self.active: dict[str, asyncio.Task] = {}
        self._wake = asyncio.Event()
        self._loop_task: asyncio.Task | None = None
        self._next_sweep = 0.0

    def start(self) -> None:
        self._loop_task = asyncio.create_task(self._loop(), name="ingestion-runner")

    def wake(self) -> None:
        """A document is waiting (may be called from any thread)."""
        if self._loop_task is None:
            return
        try:
            self._loop_task.get_loop().call_soon_threadsafe(self._wake.set)
        except RuntimeError:  # the loop is closed: the runner is gone
            pass

    async def close(self) -> None:
        """Stop: the documents being ingested go back to the queue (this or another runner resumes them)."""
        if self._loop_task is not None:
            self._loop_task.cancel()
            await asyncio.gather(self._loop_task, return_exceptions=True)
        held = list(self.active)
        for task in self.active.values():
            task.cancel()
        await asyncio.gather(*self.active.values(), return_exceptions=True)
        await asyncio.to_thread(self.ingestion.parser.close)
        try:
            await asyncio.to_thread(self.queue.release, held)
        except Exception:
            log.exception("ingestion runner: could not release %d document(s); they are queued again once "
                          "their lease expires", len(held))

    async def _loop(self) -> None:
        while True:
            try:
                await self.schedule()
            except Exception:
                log.exception("ingestion runner: error while scheduling (retrying)")
            try:
                await asyncio.wait_for(self._wake.wait(), self.poll_s)
            except TimeoutError:
                pass
            self._wake.clear()

    async def schedule(self) -> None:
        """One round: renew leases, recover orphans, take waiting documents, sweep expired ones."""
        held = await asyncio.to_thread(self.queue.renew, list(self.active))
        for doc_id, task in list(self.active.items()):
            if doc_id not in held:  # reprocessed, deleted, or taken over after this runner stalled
                log.info("document %s is no longer held by this runner; its ingestion here stops", doc_id)
                task.cancel()
        recovered = await asyncio.to_thread(self.queue.recover, set(self.active))
        if recovered:
            log.warning("ingestion: %d document(s) whose runner stopped were queued again (or failed)", recovered)
        room = self.workers - len(self.active)
        if room > 0:
            for doc_id in await asyncio.to_thread(self.queue.claim, room):
                self._launch(doc_id)
        if time.monotonic() >= self._next_sweep:
            self._next_sweep = time.monotonic() + EXPIRY_SWEEP_S
            for doc in await asyncio.to_thread(self.queue.expired):
                await asyncio.to_thread(self.documents.remove, doc)

    def _launch(self, doc_id: str) -> None:
        task = asyncio.create_task(self._ingest(doc_id), name=f"ingest:{doc_id}")
        self.active[doc_id] = task

        def done(_):
            if self.active.get(doc_id) is task:
                del self.active[doc_id]
            self._wake.set()

        task.add_done_callback(done)

    async def _ingest(self, doc_id: str) -> None:
        loaded = await asyncio.to_thread(self.queue.load, doc_id)
        if loaded is None:
            return  # deleted meanwhile
        doc, library = loaded
        outcome: Outcome = await self.ingestion.run(doc, library)
        recorded = await asyncio.to_thread(self.queue.finish, doc_id, outcome.status, **outcome.fields)
        if not recorded:  # reprocessed or deleted meanwhile: a deleted document's index entries go too
            if await asyncio.to_thread(self.queue.load, doc_id) is None:
                await asyncio.to_thread(self.documents.remove, doc)
            return
        log.info("document %s ingested: %s%s", doc_id, outcome.status,
                 f" ({outcome.fields['process_error']})" if outcome.fields.get("process_error") else "")
