"""Shared check of the engine-client tests: a replaced client is closed within its grace period."""

import asyncio

from plateforme.engines.retired_clients import GRACE_S


async def assert_closed_in_time(old, new) -> None:
    """`old` (a replaced engine client) closes within the grace period; `new` stays open."""
    for _ in range(int((GRACE_S + 3) * 10)):
        if old._http.is_closed:
            break
        await asyncio.sleep(0.1)
    assert old._http.is_closed and not new._http.is_closed
