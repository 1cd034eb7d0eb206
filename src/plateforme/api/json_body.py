"""Treat request bodies sent without a JSON content type (curl's default) as JSON."""

from starlette.types import ASGIApp, Receive, Scope, Send

_NOT_JSON = (b"", b"application/x-www-form-urlencoded", b"text/plain")


class DefaultJSONContentType:
    """ASGI middleware: a POST/PUT/PATCH body with no or a form/text content type is read as JSON.

    Multipart uploads and explicit other types are left alone.
    """

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] in ("POST", "PUT", "PATCH"):
            headers = [(k, v) for k, v in scope["headers"] if k != b"content-type"]
            current = dict(scope["headers"]).get(b"content-type", b"").split(b";")[0].strip().lower()
            if current in _NOT_JSON:
                scope = {**scope, "headers": [*headers, (b"content-type", b"application/json")]}
        await self.app(scope, receive, send)
