"""The flow shared by chat and FIM completions: limits, streaming or not, usage recording."""

import secrets
import time

from fastapi import Request
from fastapi.responses import Response, StreamingResponse
from pydantic import BaseModel

from plateforme.api.disconnect import ClientDisconnected, unless_disconnected
from plateforme.api.metering import UsageSettlement, admit_billable
from plateforme.api.completion_shapes import completion_response
from plateforme.api.streaming import chat_sse

# nginx's status for "the client closed the connection before the answer": nobody receives it.
CLIENT_CLOSED_REQUEST = 499


async def serve_completion(request: Request, service, service_request, model: str, stream: bool, route: str,
                           traced: BaseModel | None = None):
    """Run `service_request` on `service` (ChatService or FIMService) for the calling workspace.

    `traced`: the request as sent, captured with the answer when the workspace captures traces.
    """
    who = await admit_billable(request)
    service_request.tenant = who.workspace_id
    completion_id = "cmpl-" + secrets.token_hex(16)
    settlement = UsageSettlement(request, model, route, completion_id)
    created = int(time.time())
    capture = None if traced is None else \
        await request.app.state.traces.begin(who, completion_id, model, created, stream, traced)
    if stream:
        events = service.stream(service_request, settlement.tally)
        if capture is not None:
            events = capture.wrap(events)
        # The checks (model, capacity, context) and the engine's acceptance come before the first
        # item, so a refusal is answered as an HTTP error with its status, not inside a stream.
        try:
            first = await anext(events)
        except BaseException as exc:
            settlement.failed(exc)
            raise
        return StreamingResponse(
            chat_sse(first, events, completion_id, model, created, settlement),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )
    try:
        # A client that leaves stops the generation (its slot is freed at once).
        result = await unless_disconnected(request, service.complete(service_request, settlement.tally))
    except ClientDisconnected:
        settlement.cut("client_gone")
        return Response(status_code=CLIENT_CLOSED_REQUEST)  # nobody reads it; logged and counted as such
    except BaseException as exc:
        settlement.failed(exc)
        raise
    await settlement.complete(result.usage)
    if capture is not None:
        capture.completed(result)  # written in the background
    return completion_response(completion_id, model, created, result)
