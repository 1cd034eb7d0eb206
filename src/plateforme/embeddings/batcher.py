"""Concurrent embedding calls to one model, embedded together.

    batcher = EmbeddingBatcher(engine, max_batch=64, wait_s=0.002)
    batch = await batcher.embed(["a", "b"], "document")   # EmbeddingBatch of these texts only

Callers' texts wait in one FIFO; a batch takes up to `max_batch` texts of one input type (a
caller's texts may span several batches), and at most `engine.admission.slots` batches run at
once. A batch first gives every waiting caller an equal share of its room, then fills the rest
in arrival order, and the input types take turns: a search query or a short API request joins
the next batch even behind the thousands of chunks of a document being ingested. While the engine is busy, new texts pile up and go together in the next batch; when it is
idle, a batch waits `wait_s` for others to join unless it is already full, or its caller came
alone (no other call in the `ALONE_S` before it: a lone request, e.g. one text to moderate, is
not kept waiting for company that is not coming). A batch the engine
refuses (EngineRejected: one caller's input) is retried caller by caller, so one bad input only
fails its own caller. A caller that goes away before its texts are taken costs nothing.
"""

import asyncio
import time
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from plateforme.engines.embedding_client import EmbeddingBatch, InputType
from plateforme.engines.errors import EngineRejected, EngineUnavailable

BATCH_TENANT = "(embeddings)"  # the admission tenant of batches (they mix workspaces)
ALONE_S = 0.05  # a call with no other call this long before it is not held back for a batch


@dataclass(eq=False)
class _Job:
    texts: list[str]
    input_type: InputType
    future: asyncio.Future
    taken: int = 0  # texts handed to batches so far
    done: int = 0
    parts: list[tuple[int, EmbeddingBatch]] = field(default_factory=list)  # (start, its part)

    @property
    def untaken(self) -> int:
        return len(self.texts) - self.taken


@dataclass
class _Piece:
    job: _Job
    start: int
    end: int


def share_tokens(total: int, texts: list[str]) -> list[int]:
    """`total` split over `texts` in proportion to their length (exact sum), when an engine only
    reports a batch's total."""
    weights = np.array([len(t) + 1 for t in texts], dtype=np.float64)
    raw = total * weights / weights.sum()
    shares = np.floor(raw).astype(int)
    for i in np.argsort(raw - shares)[::-1][: total - int(shares.sum())]:
        shares[i] += 1
    return [int(s) for s in shares]


class EmbeddingBatcher:
    def __init__(self, engine, max_batch: int, wait_s: float, max_pending: int | None = None):
        self.engine = engine
        self.max_batch = max(1, max_batch)
        self.wait_s = max(0.0, wait_s)
        slots = engine.admission.slots
        # Texts that may wait; beyond, 503 (a caller alone may always wait, however many texts).
        self.max_pending = max_pending or (slots + engine.admission.max_queue) * self.max_batch
        self._slots = asyncio.Semaphore(slots)
        self._queue: deque[_Job] = deque()
        self._pending = 0  # untaken texts in the queue
        self._dispatcher: asyncio.Task | None = None
        self._running: set[asyncio.Task] = set()
        self._closed = False
        self._last_kind: InputType | None = None
        self._last_arrival = float("-inf")
        self._company = False  # the latest call came within ALONE_S of the one before it
        # Counted for /metrics and tests: engine calls, texts embedded, tokens read.
        self.batches = 0
        self.texts = 0
        self.tokens = 0

    async def embed(self, texts: list[str], input_type: InputType) -> EmbeddingBatch:
        if self._closed:
            raise EngineUnavailable(f"model {self.engine.name!r} is shutting down")
        if not texts:
            raise ValueError("nothing to embed")
        if self._pending and self._pending + len(texts) > self.max_pending:
            raise EngineUnavailable(f"model {self.engine.name!r} is at capacity ({self._pending} texts waiting to "
                                    "be embedded); retry shortly")
        now = time.monotonic()
        self._company, self._last_arrival = now - self._last_arrival < ALONE_S, now
        job = _Job(list(texts), input_type, asyncio.get_running_loop().create_future())
        self._queue.append(job)
        self._pending += len(texts)
        if self._dispatcher is None or self._dispatcher.done():
            self._dispatcher = asyncio.create_task(self._dispatch(), name=f"embed-batches:{self.engine.name}")
        try:
            return await asyncio.shield(job.future)
        except asyncio.CancelledError:
            self._forget(job)
            raise

    def _forget(self, job: _Job) -> None:
        """The caller left: its texts not yet taken are dropped."""
        if job.untaken and job in self._queue:
            self._queue.remove(job)
            self._pending -= job.untaken
            job.taken = len(job.texts)
        if not job.future.done():
            job.future.cancel()

    async def _dispatch(self) -> None:
        while self._queue:
            await self._slots.acquire()
            if self._pending < self.max_batch and self.wait_s and not self._running and self._company:
                await asyncio.sleep(self.wait_s)  # an idle engine: let concurrent callers join
            pieces = self._take()
            if not pieces:
                self._slots.release()
                continue
            task = asyncio.create_task(self._run(pieces))
            self._running.add(task)
            task.add_done_callback(self._running.discard)

    def _take(self) -> list[_Piece]:
        """Up to max_batch texts of one input type (the types take turns): an equal share for
        each waiting caller of that type, then the rest of the room in arrival order."""
        kinds = list(dict.fromkeys(job.input_type for job in self._queue))
        if not kinds:
            return []
        kind = next((k for k in kinds if k != self._last_kind), kinds[0])
        self._last_kind = kind
        jobs = [job for job in self._queue if job.input_type == kind]
        room = self.max_batch
        counts = dict.fromkeys(jobs, 0)
        share = max(1, room // len(jobs))
        for job in jobs:
            counts[job] = min(share, job.untaken, room)
            room -= counts[job]
        for job in jobs:
            extra = min(room, job.untaken - counts[job])
            counts[job] += extra
            room -= extra
        pieces = []
        for job in jobs:
            count = counts[job]
            if not count:
                continue
            pieces.append(_Piece(job, job.taken, job.taken + count))
            job.taken += count
            self._pending -= count
            if not job.untaken:
                self._queue.remove(job)
        return pieces

    async def _run(self, pieces: list[_Piece]) -> None:
        try:
            try:
                await self._embed_pieces(pieces)
            except EngineRejected as exc:
                if len({id(p.job) for p in pieces}) == 1:
                    raise
                for piece in pieces:  # find whose input it was: each caller alone
                    try:
                        await self._embed_pieces([piece])
                    except Exception as one:
                        self._fail(piece.job, one)
        except Exception as exc:
            for piece in pieces:
                self._fail(piece.job, exc)
        finally:
            self._slots.release()

    async def _embed_pieces(self, pieces: list[_Piece]) -> None:
        live = [p for p in pieces if not p.job.future.done()]
        if not live:
            return
        texts = [t for p in live for t in p.job.texts[p.start:p.end]]
        async with self.engine.admission.admit(BATCH_TENANT):
            batch = await self.engine.client().embed(texts, live[0].job.input_type)
        self.batches += 1
        self.texts += len(texts)
        self.tokens += batch.prompt_tokens
        tokens = batch.tokens if batch.tokens is not None else share_tokens(batch.prompt_tokens, texts)
        at = 0
        for piece in live:
            count = piece.end - piece.start
            part = EmbeddingBatch(batch.vectors[at:at + count], sum(tokens[at:at + count]), tokens[at:at + count])
            at += count
            self._deliver(piece, part)

    def _deliver(self, piece: _Piece, part: EmbeddingBatch) -> None:
        job = piece.job
        if job.future.done():
            return
        job.parts.append((piece.start, part))
        job.done += piece.end - piece.start
        if job.done == len(job.texts):
            job.parts.sort(key=lambda item: item[0])
            parts = [p for _, p in job.parts]
            job.future.set_result(EmbeddingBatch(np.concatenate([p.vectors for p in parts]),
                                                 sum(p.prompt_tokens for p in parts),
                                                 [t for p in parts for t in p.tokens]))

    @staticmethod
    def _fail(job: _Job, exc: BaseException) -> None:
        if not job.future.done():
            job.future.set_exception(exc)

    async def close(self) -> None:
        self._closed = True
        tasks = [t for t in (self._dispatcher, *self._running) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for job in self._queue:
            self._fail(job, EngineUnavailable(f"model {self.engine.name!r} is shutting down"))
        self._queue.clear()
