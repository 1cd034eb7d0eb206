"""The parsing worker pool (libraries/parser_pool.py): work runs in a spawned process, a worker that
dies fails only the document it was reading, and the next one gets a new pool."""

import asyncio
import os

import pytest

from plateforme.libraries.parser_pool import ParserCrashed, ParserPool


def _die(*_):
    os._exit(3)  # what an out-of-memory kill or a crash in a native parser looks like


def _whose(data: bytes, *_):
    return data.upper(), os.getpid()


def test_a_dead_worker_fails_its_document_only():
    async def scenario():
        pool = ParserPool(1, job=_whose)
        try:
            upper, pid = await pool.run(b"first")
            assert upper == b"FIRST" and pid != os.getpid()  # not in the gateway's process
            pool.job = _die
            with pytest.raises(ParserCrashed, match="parser process died"):
                await pool.run(b"poison")
            pool.job = _whose
            upper, new_pid = await pool.run(b"next")
            assert upper == b"NEXT" and new_pid not in (pid, os.getpid())
        finally:
            pool.close()

    asyncio.run(scenario())
