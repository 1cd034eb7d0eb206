"""Close the engine clients of workers that were replaced (restarted after a crash).

A client is replaced only once its worker process is gone, so nothing can still be served through
it; it is closed after a short grace, in which requests that took it just before the switch fail
on their own (worker unreachable) rather than on a closed client.
"""

import asyncio

GRACE_S = 2.0


class RetiredClients:
    def __init__(self, grace_s: float = GRACE_S):
        self.grace_s = grace_s
        self._pending: dict[asyncio.Task, object] = {}

    def retire(self, client) -> None:
        """Close `client` (anything with `async close()`) after the grace period."""
        task = asyncio.get_running_loop().create_task(self._close_later(client))
        self._pending[task] = client
        task.add_done_callback(self._forget)

    def _forget(self, task: asyncio.Task) -> None:
        self._pending.pop(task, None)

    async def _close_later(self, client) -> None:
        await asyncio.sleep(self.grace_s)
        await client.close()

    async def close_all(self) -> None:
        """Now, without waiting for the grace periods (shutdown)."""
        pending = dict(self._pending)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        await asyncio.gather(*(client.close() for client in pending.values()), return_exceptions=True)
