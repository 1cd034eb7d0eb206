"""Parsing (and OCR) and chunking run in worker processes, never on the gateway's event loop nor in
its threads: they are CPU-bound, and a pathological file must not take the gateway down with it.

The pool is spawned (no fork of a process holding threads, sockets and a database pool) and only
created when the first document arrives. A worker that dies (out of memory, a crash in a native
parser) fails the document it was working on with that reason; the next document gets a new pool.
"""

import asyncio
import concurrent.futures
import logging
import multiprocessing
from concurrent.futures.process import BrokenProcessPool

log = logging.getLogger("plateforme.libraries")


class ParserCrashed(RuntimeError):
    pass


def parse_and_chunk(data: bytes, filename: str, mime_type: str | None, ocr, max_pages: int, max_chars: int):
    """In a worker process: the document's pages and its chunks."""
    from plateforme.libraries.chunking import chunk_document
    from plateforme.libraries.parsing import parse_document

    parsed = parse_document(data, filename, mime_type, ocr, max_pages)
    return parsed, chunk_document(parsed, max_chars=max_chars, overlap_chars=min(150, max_chars // 8))


class ParserPool:
    def __init__(self, workers: int, job=parse_and_chunk):
        self.workers = max(1, workers)
        self.job = job  # a module-level function: it is sent to the workers by name
        self._pool: concurrent.futures.ProcessPoolExecutor | None = None

    def _executor(self) -> concurrent.futures.ProcessPoolExecutor:
        if self._pool is None:
            self._pool = concurrent.futures.ProcessPoolExecutor(
                self.workers, mp_context=multiprocessing.get_context("spawn"))
        return self._pool

    async def run(self, *args):
        pool = self._executor()
        try:
            return await asyncio.get_running_loop().run_in_executor(pool, self.job, *args)
        except BrokenProcessPool:
            if self._pool is pool:
                self._pool = None
                pool.shutdown(wait=False, cancel_futures=True)
            raise ParserCrashed("the parser process died while reading this document (out of memory, or a "
                                "crash in a native parser); reprocess it to try again") from None

    def close(self) -> None:
        """Stop the workers now, whatever they are doing (their documents are picked up again later)."""
        pool, self._pool = self._pool, None
        if pool is None:
            return
        processes = list(getattr(pool, "_processes", {}).values())  # the executor has no public kill
        pool.shutdown(wait=False, cancel_futures=True)
        for process in processes:
            if process.is_alive():
                process.terminate()
        for process in processes:
            process.join(5)
