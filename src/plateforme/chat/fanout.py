"""Run several async streams at once and yield their items in arrival order."""

import asyncio
from collections.abc import AsyncIterator

_END = object()


async def merge(streams: list[AsyncIterator]) -> AsyncIterator:
    """Items of all `streams` as they come; the first error of any stream is raised."""
    if len(streams) == 1:
        async for item in streams[0]:
            yield item
        return
    queue: asyncio.Queue = asyncio.Queue()

    async def pump(stream: AsyncIterator) -> None:
        try:
            async for item in stream:
                await queue.put(item)
            await queue.put(_END)
        except BaseException as exc:  # forwarded to the consumer, which re-raises it
            await queue.put(exc)

    tasks = [asyncio.create_task(pump(s)) for s in streams]
    try:
        remaining = len(tasks)
        while remaining:
            item = await queue.get()
            if item is _END:
                remaining -= 1
            elif isinstance(item, BaseException):
                raise item
            else:
                yield item
    finally:
        for task in tasks:
            task.cancel()
        # Cancelled once, each stream closes its engine connection (that is what stops the
        # engine). `wait`, unlike `gather`, does not pass a cancellation of this task on to
        # them: a caller cancelled over and over (anyio's cancel scopes) must not cut short
        # their clean-up and leave the engine generating for nobody.
        await asyncio.wait(tasks)
