"""Chat and FIM completions over HTTP: the request pipeline's answer as JSON or as a stream."""

from fastapi import Request
from fastapi.responses import Response, StreamingResponse
from pydantic import BaseModel

from plateforme.api.completion_shapes import completion_response
from plateforme.api.disconnect import ClientDisconnected, unless_disconnected
from plateforme.api.streaming import chat_sse
from plateforme.pipeline.call import GenerationCall

# nginx's status for "the client closed the connection before the answer": nobody receives it.
CLIENT_CLOSED_REQUEST = 499


async def serve_completion(request: Request, route: str, service_request, stream: bool,
                           traced: BaseModel | None = None):
    """Run `service_request` (a ChatRequest or FIMRequest) through the pipeline for the caller.

    `traced`: the request as sent, captured with the answer when the workspace captures traces.
    """
    call = GenerationCall(request.state.principal, route, service_request, traced=traced)
    pipeline = request.app.state.pipeline
    if stream:
        # Limits, model, capacity, context and the engine's acceptance are checked before the
        # stream starts, so a refusal is answered as an HTTP error with its status.
        events = await pipeline.stream(call)
        return StreamingResponse(
            chat_sse(events, call.id, call.model, call.created),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )
    try:
        # A client that leaves stops the generation (its slot is freed at once, what was made is billed).
        result = await unless_disconnected(request, pipeline.complete(call))
    except ClientDisconnected:
        return Response(status_code=CLIENT_CLOSED_REQUEST)  # nobody reads it; logged and counted as such
    return completion_response(call.id, call.model, call.created, result)
