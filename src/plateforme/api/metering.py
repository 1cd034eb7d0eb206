"""Billable routes: check the caller's limits before the work, record its tokens exactly once after.

A request's tokens are billed whatever ends it: the engine's final usage when it completes, and
otherwise what its TokenTally saw generated (the client left, the worker crashed, an unexpected
error), so abandoning a stream can neither bypass the budget nor the tokens-per-minute limits.
"""

import asyncio
import logging
from collections.abc import Awaitable, Callable

from fastapi import Request

from plateforme.chat.errors import ContextLengthExceeded
from plateforme.chat.types import Usage
from plateforme.engines.errors import EngineRejected, EngineUnavailable
from plateforme.engines.token_tally import TokenTally
from plateforme.observability.metrics import observe_generation_end, observe_tokens
from plateforme.tenancy.principal import Principal

log = logging.getLogger("plateforme.usage")
_background: set[asyncio.Task] = set()  # usage writes of cut requests, kept alive until written


async def admit_billable(request: Request) -> Principal:
    """Raise RateLimited (answered 429 with Retry-After) when the caller is over a limit."""
    who: Principal = request.state.principal
    await request.app.state.billing.admit(who)
    return who


def usage_recorder(request: Request, model: str, route: str, request_id: str) -> Callable[[Usage], Awaitable[None]]:
    who: Principal = request.state.principal
    billing = request.app.state.billing

    async def record(usage: Usage) -> None:
        observe_tokens(request, model, usage.prompt_tokens, usage.completion_tokens)
        await billing.record(who, model, route, request_id, usage.prompt_tokens, usage.completion_tokens)

    return record


def _written(task: asyncio.Task) -> None:
    _background.discard(task)
    if not task.cancelled() and task.exception() is not None:
        log.error("usage of a cut request could not be recorded", exc_info=task.exception())


class UsageSettlement:
    """The usage of one billable request, recorded once, however the request ends."""

    def __init__(self, request: Request, model: str, route: str, request_id: str):
        self.tally = TokenTally()
        self._record = usage_recorder(request, model, route, request_id)
        self._request, self._model, self._id = request, model, request_id
        self.settled = False

    async def complete(self, usage: Usage) -> None:
        """The request completed with the engine's final `usage`: recorded before it is answered."""
        if self.settled:
            return
        self.settled = True
        observe_generation_end(self._request, self._model, "completed")
        await self._record(usage)

    def cut(self, outcome: str) -> None:
        """The request ended early (`outcome`: client_gone, engine_failed, failed): bill what was
        generated. Written in the background, since the caller may itself be being cancelled."""
        if self.settled:
            return
        self.settled = True
        prompt, completion = self.tally.totals()
        if not (prompt or completion):
            return  # the engine did nothing for it
        observe_generation_end(self._request, self._model, outcome)
        log.info("request %s ended early (%s): billing %d prompt + %d completion tokens",
                 self._id, outcome, prompt, completion)
        task = asyncio.get_running_loop().create_task(self._record(Usage(prompt, completion)))
        _background.add(task)
        task.add_done_callback(_written)

    def failed(self, exc: BaseException) -> None:
        """The request raised `exc`: a refusal costs nothing, any other end bills what was done."""
        if isinstance(exc, ContextLengthExceeded):
            self.settled = True
            return
        self.cut("client_gone" if isinstance(exc, asyncio.CancelledError) else
                 "engine_failed" if isinstance(exc, (EngineUnavailable, EngineRejected)) else "failed")
