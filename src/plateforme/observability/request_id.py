"""ASGI middleware: a request id for every request, request metrics, one access log line.

Pure ASGI (not BaseHTTPMiddleware), so streaming responses pass through unbuffered: the only
per-request work is wrapping `send` to add the `X-Request-ID` header to the response start and
to note the status; nothing runs per body chunk beyond one comparison.
"""

from __future__ import annotations

import logging
import time

from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from plateforme.observability.context import (
    RequestContext, accepted_request_id, enter, leave, new_request_id,
)
from plateforme.observability.metrics import UNMATCHED_ROUTE, Metrics

HEADER = b"x-request-id"
access_log = logging.getLogger("plateforme.access")
log = logging.getLogger("plateforme.api")


def route_template(scope: Scope, routes: list) -> str:
    """The matched route's path template (`/v1/files/{file_id}`), never the raw path."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    if path:
        return path
    # The scope we hold may be a copy made before routing (an inner middleware copies it): match.
    partial = None
    for candidate in routes:
        try:
            match, _ = candidate.matches(scope)
        except Exception:  # noqa: BLE001 - a route that cannot judge this scope does not match
            continue
        if match is Match.FULL:
            return getattr(candidate, "path", UNMATCHED_ROUTE)
        if match is Match.PARTIAL and partial is None:
            partial = getattr(candidate, "path", None)
    return partial or UNMATCHED_ROUTE


class RequestObservability:
    def __init__(self, app: ASGIApp, metrics: Metrics, routes: list | None = None):
        self.app = app
        self.metrics = metrics
        self.routes = routes if routes is not None else []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = None
        for key, value in scope["headers"]:
            if key == HEADER:
                incoming = value
                break
        request_id = accepted_request_id(incoming) or new_request_id()
        raw_id = request_id.encode()
        started = time.perf_counter()
        token = enter(RequestContext(request_id, started, self.metrics))
        scope.setdefault("state", {})  # shared with inner copies of the scope: principal stays visible
        status = 0

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = [(k, v) for k, v in message.get("headers", ()) if k.lower() != HEADER]
                headers.append((HEADER, raw_id))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            if status:  # the response had started: nothing more can be sent
                raise
            # Answered here rather than by the outermost handler, so the 500 carries the id too.
            log.exception("unhandled error")
            from plateforme.api.errors import error_response

            await error_response(500, "internal server error; see the server log", "internal_error")(
                scope, receive, send_with_id)
        finally:
            self._record(scope, status or 499, time.perf_counter() - started, request_id)
            leave(token)

    def _record(self, scope: Scope, status: int, seconds: float, request_id: str) -> None:
        route = route_template(scope, self.routes)
        method = scope["method"]
        try:
            self.metrics.observe_request(route, method, status, seconds)
        except Exception:  # noqa: BLE001 - metrics never fail a request
            log.exception("recording request metrics failed")
        principal = (scope.get("state") or {}).get("principal")
        workspace = getattr(principal, "workspace_id", None)
        level = logging.DEBUG if route == "/metrics" else logging.INFO
        if access_log.isEnabledFor(level):
            access_log.log(level, "%s %s %s", method, route, status, extra={
                "method": method, "route": route, "path": scope.get("path"), "status": status,
                "duration_ms": round(seconds * 1000, 2), "request_id": request_id,
                **({"workspace": str(workspace)} if workspace is not None else {}),
            })
