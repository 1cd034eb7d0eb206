"""ASGI middleware: a request id for every request, request metrics, one access log line.

Pure ASGI (not BaseHTTPMiddleware), so streaming responses pass through unbuffered: the only
per-request work is wrapping `send` to add the `X-Request-ID` header to the response start and
to note the status; nothing runs per body chunk beyond one comparison.
"""

from __future__ import annotations

import logging
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from plateforme.observability.context import (
    RequestContext, accepted_request_id, current_request, enter, leave, new_request_id,
)
from plateforme.observability.metrics import UNMATCHED_ROUTE, Metrics

HEADER = b"x-request-id"
# Probes (load balancers, Prometheus) would flood the access log at info level: debug for them.
QUIET_ROUTES = frozenset({"/health", "/metrics"})
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})  # others: "OTHER"
access_log = logging.getLogger("plateforme.access")
log = logging.getLogger("plateforme.api")


class RouteRecorder:
    """Innermost middleware: notes the matched route for the request's context.

    Outer middlewares may hand inner ones a copy of the scope, so the router's `scope["route"]`
    is read here, where the router's scope is still in hand, not by RequestObservability.
    """

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await self.app(scope, receive, send)
        finally:
            ctx = current_request()
            path = getattr(scope.get("route"), "path", None)
            if ctx is not None and path:
                ctx.route = path


class RequestObservability:
    def __init__(self, app: ASGIApp, metrics: Metrics):
        self.app = app
        self.metrics = metrics

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
        ctx = RequestContext(request_id, started, self.metrics)
        token = enter(ctx)
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
            self._record(scope, ctx.route or UNMATCHED_ROUTE, status or 499, time.perf_counter() - started,
                         request_id)
            leave(token)

    def _record(self, scope: Scope, route: str, status: int, seconds: float, request_id: str) -> None:
        method = scope["method"] if scope["method"] in METHODS else "OTHER"
        try:
            self.metrics.observe_request(route, method, status, seconds)
        except Exception:  # noqa: BLE001 - metrics never fail a request
            log.exception("recording request metrics failed")
        principal = (scope.get("state") or {}).get("principal")
        workspace = getattr(principal, "workspace_id", None)
        level = logging.DEBUG if route in QUIET_ROUTES else logging.INFO
        if access_log.isEnabledFor(level):
            access_log.log(level, "%s %s %s", method, route, status, extra={
                "method": method, "route": route, "path": scope.get("path"), "status": status,
                "duration_ms": round(seconds * 1000, 2), "request_id": request_id,
                **({"workspace": str(workspace)} if workspace is not None else {}),
            })
