"""A request's tokens, recorded exactly once whatever ends it.

The engine's final usage when the request completes; otherwise what its TokenTally saw
generated (the client left, the worker crashed, an unexpected error), so abandoning a stream can
neither bypass the budget nor the tokens-per-minute limits.
"""

import asyncio
import logging
from collections.abc import Awaitable, Callable

from plateforme.chat.errors import ContextLengthExceeded
from plateforme.chat.types import Usage
from plateforme.engines.errors import EngineRejected, EngineUnavailable
from plateforme.engines.token_tally import TokenTally
from plateforme.pipeline.guards import RequestRefused

log = logging.getLogger("plateforme.usage")
_background: set[asyncio.Task] = set()  # usage writes of cut requests, kept alive until written

# How a generation ended, as counted in plateforme_generations_ended_total{outcome} ("blocked": its
# answer was withheld by an output guardrail, its tokens billed; "refused": a guard refused it
# before any generation, see RequestPipeline).
OUTCOMES = ("completed", "client_gone", "engine_failed", "failed", "blocked", "refused")


def _written(task: asyncio.Task) -> None:
    _background.discard(task)
    if not task.cancelled() and task.exception() is not None:
        log.error("usage of a cut request could not be recorded", exc_info=task.exception())


class UsageSettlement:
    """The usage of one billable request, recorded once, however the request ends.

    `record(usage, blocked)` writes it (limits windows, usage table, token metrics); `ended(outcome)`
    counts how the generation ended.
    """

    def __init__(self, request_id: str, record: Callable[[Usage, bool], Awaitable[None]],
                 ended: Callable[[str], None]):
        self.tally = TokenTally()
        self._id, self._record, self._ended = request_id, record, ended
        self.settled = False

    async def complete(self, usage: Usage, outcome: str = "completed") -> None:
        """The request completed with the engine's final `usage`: recorded before it is answered
        (`outcome` "blocked": its answer withheld by a guard, recorded as blocked)."""
        if self.settled:
            return
        self.settled = True
        self._ended(outcome)
        await self._record(usage, outcome == "blocked")

    def cut(self, outcome: str) -> None:
        """The request ended early (`outcome`: client_gone, engine_failed, failed, blocked): bill what
        was generated. Written in the background, since the caller may itself be being cancelled."""
        if self.settled:
            return
        self.settled = True
        prompt, completion = self.tally.totals()
        if not (prompt or completion):
            return  # the engine did nothing for it
        self._ended(outcome)
        log.info("request %s ended early (%s): billing %d prompt + %d completion tokens",
                 self._id, outcome, prompt, completion)
        task = asyncio.get_running_loop().create_task(self._record(Usage(prompt, completion), outcome == "blocked"))
        _background.add(task)
        task.add_done_callback(_written)

    def failed(self, exc: BaseException) -> None:
        """The request raised `exc`: a refusal costs nothing, any other end bills what was done (a
        guard's refusal mid-stream: what was generated, recorded as blocked)."""
        if isinstance(exc, ContextLengthExceeded):
            self.settled = True
            return
        if isinstance(exc, RequestRefused):
            self.cut("blocked")
            return
        self.cut("client_gone" if isinstance(exc, (asyncio.CancelledError, GeneratorExit)) else
                 "engine_failed" if isinstance(exc, (EngineUnavailable, EngineRejected)) else "failed")


async def settled_stream(first, events, settlement: UsageSettlement, on_first_token: Callable[[], None]):
    """`first` then the rest of `events`, settling the usage whatever ends the stream: the Usage
    item (recorded before it is passed on), a failure, or the consumer closing it early."""
    item = first
    first_token_pending = True
    try:
        while item is not None:
            if isinstance(item, Usage):
                await settlement.complete(item)
            elif first_token_pending and (item.content or item.tool_calls or item.thinking):
                first_token_pending = False
                on_first_token()
            yield item
            item = await anext(events, None)
    except BaseException as exc:
        settlement.failed(exc)
        raise
    finally:
        settlement.cut("client_gone")  # no-op once settled
        await events.aclose()
