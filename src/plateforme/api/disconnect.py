"""Cancel a request's work when its client goes away, for answers that are not streamed.

Starlette cancels a streamed response when the client disconnects, but an ordinary endpoint
runs to its end: a non-streaming generation whose client left would keep an engine slot busy
for minutes. Once the body has been read, the server's `receive` returns only when the client
disconnects (`http.disconnect`), so waiting on it beside the work tells when to stop.
"""

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

from fastapi import Request

T = TypeVar("T")


class ClientDisconnected(Exception):
    """The client closed the connection before its answer was ready."""


async def _disconnected(request: Request) -> None:
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            return


async def unless_disconnected(request: Request, work: Awaitable[T]) -> T:
    """The result of `work`; if the client disconnects first, `work` is cancelled and
    ClientDisconnected raised."""
    task = asyncio.ensure_future(work)
    watcher = asyncio.ensure_future(_disconnected(request))
    try:
        await asyncio.wait({task, watcher}, return_when=asyncio.FIRST_COMPLETED)
        if not task.done() and watcher.exception() is None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            raise ClientDisconnected()
        return await task  # done, or the watcher could not watch: the work goes on to its end
    finally:
        watcher.cancel()
        if not task.done():
            task.cancel()
        await asyncio.gather(watcher, task, return_exceptions=True)
