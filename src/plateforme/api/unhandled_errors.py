"""Answer an unexpected exception with a 500 in Mistral's error shape, keeping the connection open.

Starlette's ServerErrorMiddleware sends the 500 from the app's `Exception` handler and then
re-raises, so that the server logs the error; uvicorn, seeing an exception after the response
began, closes the connection, and a client reusing pooled connections gets a reset on its next
request. This middleware sits just inside ServerErrorMiddleware (installed last, it is the
outermost of the app's own middleware) and ends the request itself: the error is logged here
and the 500 sent, and nothing is raised further. An exception after the response started
(a stream that failed midway) is re-raised, since a half-sent response can only be cut off.
"""

import logging

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from plateforme.api.errors import error_response

log = logging.getLogger("plateforme.api")


class UnhandledErrors:
    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def noting_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, noting_send)
        except Exception:
            if started:
                raise
            log.exception("unhandled error on %s %s", scope.get("method"), scope.get("path"))
            await error_response(500, "internal server error; see the server log", "internal_error")(
                scope, receive, send)
