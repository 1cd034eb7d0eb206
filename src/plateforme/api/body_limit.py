"""Refuse request bodies over the size limit with 413, before reading them into memory or disk.

Uploads (multipart POST /v1/files and /v1/libraries/{id}/documents) may be as large as
`max_upload_bytes`; every other body is capped at `max_request_bytes`. A declared Content-Length over the cap is refused at once; a
chunked body is counted as it arrives and cut off when it passes the cap.
"""

import json
import re

from starlette.types import ASGIApp, Message, Receive, Scope, Send

UPLOAD_PATHS = ("/v1/files",)
# Documents uploaded into a library (multipart POST /v1/libraries/{id}/documents).
UPLOAD_PATH_PATTERN = re.compile(r"^/v1/libraries/[^/]+/documents$")
MULTIPART_OVERHEAD = 64 * 1024


class BodyTooLarge(Exception):
    pass


async def _refuse(send: Send, limit: int) -> None:
    body = json.dumps({"object": "error", "message": f"Request body is larger than the {limit} bytes this server "
                       "accepts; send a smaller request (or raise PLATEFORME_MAX_REQUEST_BYTES / "
                       "PLATEFORME_MAX_UPLOAD_BYTES).", "type": "request_too_large", "param": None,
                       "code": "413"}).encode()
    await send({"type": "http.response.start", "status": 413,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})


class BodySizeLimit:
    def __init__(self, app: ASGIApp, max_request_bytes: int, max_upload_bytes: int):
        self.app = app
        self.max_request = max_request_bytes
        self.max_upload = max_upload_bytes + MULTIPART_OVERHEAD

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in ("POST", "PUT", "PATCH"):
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        upload = path in UPLOAD_PATHS or UPLOAD_PATH_PATTERN.match(path) is not None
        limit = self.max_upload if upload else self.max_request
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await _refuse(send, limit)
            return
        received = 0
        exceeded = started = False

        async def counting_receive() -> Message:
            nonlocal received, exceeded
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    exceeded = True
                    raise BodyTooLarge()
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if exceeded:
                return  # whatever the app makes of the cut body, the answer is 413 (below)
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, guarded_send)
        except BodyTooLarge:
            pass
        if exceeded and not started:
            await _refuse(send, limit)
