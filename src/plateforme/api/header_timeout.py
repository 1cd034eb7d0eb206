"""A deadline for request headers in uvicorn's HTTP protocol (uvicorn has no such option).

Without it a client that opens connections and sends headers a byte at a time holds each one
forever. The deadline starts when the connection opens and again when a response is complete
(the next request on a kept-alive connection); when it passes while no request is being served,
the connection is closed: with a 408 in the API's error shape if part of a request had arrived,
silently if nothing had. Requests whose headers arrived in time are never cut by it (their body
has its own deadline: `api/body_timeout.py`).
"""

import asyncio
import json

from uvicorn.protocols.http.auto import AutoHTTPProtocol


def _timeout_response(timeout_s: float) -> bytes:
    body = json.dumps({"object": "error", "message": f"The request headers did not arrive within {timeout_s:g}s.",
                       "type": "request_timeout", "param": None, "code": "408"}).encode()
    head = (f"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\n"
            f"content-length: {len(body)}\r\nconnection: close\r\n\r\n").encode()
    return head + body


class HeaderDeadline:
    """Mixin for uvicorn's HTTP protocols (httptools and h11 alike: same hooks, same `cycle`)."""

    header_timeout: float = 10.0
    _header_timer: asyncio.TimerHandle | None = None
    _request_bytes = False

    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        self._arm_header_deadline()

    def data_received(self, data: bytes) -> None:
        self._request_bytes = True
        super().data_received(data)

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._arm_header_deadline()

    def connection_lost(self, exc) -> None:
        self._disarm_header_deadline()
        super().connection_lost(exc)

    def _arm_header_deadline(self) -> None:
        self._disarm_header_deadline()
        if self.transport.is_closing():
            return
        self._request_bytes = False
        self._header_timer = self.loop.call_later(self.header_timeout, self._header_deadline_passed)

    def _disarm_header_deadline(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _header_deadline_passed(self) -> None:
        self._header_timer = None
        cycle = self.cycle
        if (cycle is not None and not cycle.response_complete) or self.transport.is_closing():
            return  # its headers arrived: the request is being served (or the connection is going)
        if self._request_bytes:
            self.transport.write(_timeout_response(self.header_timeout))
        self.transport.close()


def protocol_with_header_timeout(timeout_s: float) -> type[asyncio.Protocol]:
    """The HTTP protocol class uvicorn would choose ("auto": httptools when installed, else h11),
    with a header deadline of `timeout_s`; pass it as `uvicorn.run(..., http=...)`."""
    base = AutoHTTPProtocol
    return type(f"HeaderDeadline{base.__name__}", (HeaderDeadline, base), {"header_timeout": timeout_s})
