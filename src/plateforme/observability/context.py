"""The request being served, in a context variable: its id, arrival time and the app's metrics.

Set by the request middleware for the whole request (child tasks such as a streaming
response's body and thread-pool calls inherit it), read by the log formatter and by
`observe_ttft`.
"""

from __future__ import annotations

import re
import secrets
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

# An incoming X-Request-ID is kept only when it is short and made of safe characters.
_WELL_FORMED = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:\-]{0,127}")


@dataclass(slots=True)
class RequestContext:
    request_id: str
    started: float  # time.perf_counter() at arrival
    metrics: Any = None  # plateforme.observability.metrics.Metrics
    route: str | None = None  # the matched route's template, once routed


_current: ContextVar[RequestContext | None] = ContextVar("plateforme_request", default=None)


def current_request() -> RequestContext | None:
    return _current.get()


def current_request_id() -> str | None:
    ctx = _current.get()
    return ctx.request_id if ctx is not None else None


def new_request_id() -> str:
    return "req_" + secrets.token_hex(12)


def accepted_request_id(raw: bytes | None) -> str | None:
    """The caller's X-Request-ID when well formed (else None: a fresh one is generated)."""
    if not raw or len(raw) > 128:
        return None
    try:
        value = raw.decode("ascii")
    except UnicodeDecodeError:
        return None
    return value if _WELL_FORMED.fullmatch(value) else None


def enter(ctx: RequestContext):
    return _current.set(ctx)


def leave(token) -> None:
    _current.reset(token)
