"""Billable routes: check the caller's limits before the work, record its tokens after."""

from collections.abc import Awaitable, Callable

from fastapi import Request

from plateforme.chat.types import Usage
from plateforme.observability.metrics import observe_tokens
from plateforme.tenancy.principal import Principal


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
