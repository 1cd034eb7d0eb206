"""The body size limit at the ASGI level: uploads (files, library documents) get the upload cap,
every other body the request cap. An in-process app behind the real middleware."""

import asyncio

import httpx
import pytest

from plateforme.api.body_limit import BodySizeLimit


async def _echo_size(scope, receive, send):
    size = 0
    while True:
        message = await receive()
        size += len(message.get("body", b""))
        if not message.get("more_body"):
            break
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": str(size).encode()})


@pytest.mark.parametrize("path, allowed", [
    ("/v1/files", True),
    ("/v1/libraries/0b0e8d4e-0c8f-4a8e-9f43-3f1d1b0c2a11/documents", True),
    ("/v1/libraries/0b0e8d4e-0c8f-4a8e-9f43-3f1d1b0c2a11/documents/x", False),
    ("/v1/libraries", False),
    ("/v1/chat/completions", False),
])
def test_uploads_get_the_upload_cap_and_other_bodies_the_request_cap(path, allowed):
    app = BodySizeLimit(_echo_size, max_request_bytes=1000, max_upload_bytes=100_000)

    async def post() -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
            return await client.post(path, content=b"x" * 5000)

    response = asyncio.run(post())
    if allowed:
        assert response.status_code == 200 and response.text == "5000"
    else:
        assert response.status_code == 413 and response.json()["type"] == "request_too_large"
