"""Answer 408 to a request whose body stalls or trickles, instead of holding its connection forever.

A body may pause at most `idle_s` between two reads, and must arrive at `min_rate` bytes/s on
average once its first `idle_s` seconds are over: the read deadline is `idle_s` after the first
read plus the time `min_rate` allows for what has arrived so far. (Headers have their own
deadline, in the HTTP server: `header_timeout`.) Once the body is complete, reads are not timed:
waiting for the client's disconnect is how a streaming response notices it.
"""

import asyncio
import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send


class BodyTimedOut(Exception):
    pass


async def _refuse(send: Send, idle_s: float, min_rate: int) -> None:
    body = json.dumps({"object": "error", "message": f"The request body did not arrive in time (a pause of over "
                       f"{idle_s:g}s, or slower than {min_rate} bytes/s on average); send it again, faster.",
                       "type": "request_timeout", "param": None, "code": "408"}).encode()
    await send({"type": "http.response.start", "status": 408,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})


class BodyReadTimeout:
    def __init__(self, app: ASGIApp, idle_s: float, min_rate: int):
        self.app = app
        self.idle_s = idle_s
        self.min_rate = max(1, min_rate)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        loop = asyncio.get_running_loop()
        received = 0
        first_read: float | None = None
        complete = timed_out = started = False

        async def timed_receive() -> Message:
            nonlocal received, first_read, complete, timed_out
            if complete:
                return await receive()
            now = loop.time()
            first_read = now if first_read is None else first_read
            deadline = first_read + self.idle_s + received / self.min_rate
            try:
                message = await asyncio.wait_for(receive(), max(0.0, min(self.idle_s, deadline - now)))
            except TimeoutError:
                timed_out = True
                raise BodyTimedOut() from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                complete = not message.get("more_body", False)
            else:
                complete = True  # disconnected
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if timed_out:
                return  # whatever the app makes of the cut body, the answer is 408 (below)
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, timed_receive, guarded_send)
        except Exception:
            if not timed_out:
                raise
        if timed_out and not started:
            await _refuse(send, self.idle_s, self.min_rate)
