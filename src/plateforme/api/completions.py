"""Chat and FIM completions over HTTP: the request pipeline's answer as JSON or as a stream."""

import json

from fastapi import Request
from fastapi.responses import Response, StreamingResponse
from pydantic import BaseModel

from plateforme.api.completion_shapes import completion_response
from plateforme.api.disconnect import ClientDisconnected, unless_disconnected
from plateforme.api.errors import error_body
from plateforme.api.streaming import chat_sse
from plateforme.pipeline.call import GenerationCall
from plateforme.pipeline.guards import RequestRefused

# nginx's status for "the client closed the connection before the answer": nobody receives it.
CLIENT_CLOSED_REQUEST = 499
_DONE = "data: [DONE]\n\n"


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
        # A refusal (RequestRefused) is answered by api/errors.py: 403 with the guardrails' report.
        events = await pipeline.stream(call)
        sse = chat_sse(events, call.id, call.model, call.created) if not getattr(service_request, "guardrails", None) \
            else guarded_sse(call, events)
        return StreamingResponse(sse, media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
    try:
        # A client that leaves stops the generation (its slot is freed at once, what was made is billed).
        result = await unless_disconnected(request, pipeline.complete(call))
    except ClientDisconnected:
        return Response(status_code=CLIENT_CLOSED_REQUEST)  # nobody reads it; logged and counted as such
    response = completion_response(call.id, call.model, call.created, result)
    response.guardrails = call.guardrails
    return response


async def guarded_sse(call: GenerationCall, events):
    """chat_sse for a request with guardrails: the last chunk (with the usage) also carries the
    guardrails' report; a stream an output guardrail stops ends with a 403 error event naming the
    categories (no [DONE]), after the content already checked and sent."""
    stopped: list[RequestRefused] = []

    async def until_refused():
        try:
            async for item in events:
                yield item
        except RequestRefused as exc:  # the pipeline billed and recorded it as blocked
            stopped.append(exc)
        finally:
            await events.aclose()

    last = None  # each event is sent once the next is known: the usage chunk is the one before [DONE]
    async for event in chat_sse(until_refused(), call.id, call.model, call.created):
        if event == _DONE:
            if stopped:
                if last is not None:
                    yield last
                yield _refusal_event(stopped[0], call.guardrails)
                return
            if last is not None:
                yield _with_report(last, call.guardrails)
            yield _DONE
            return
        if last is not None:
            yield last
        last = event
    if last is not None:  # the stream failed: chat_sse's error event is the last
        yield last


def _with_report(event: str, report: list[dict] | None) -> str:
    payload = json.loads(event[len("data: "):])
    payload["guardrails"] = report
    return f"data: {json.dumps(payload, separators=(',', ':'))}\n\n"


def _refusal_event(refusal: RequestRefused, report: list[dict] | None) -> str:
    body = error_body(403, f"Request blocked: {refusal}.", "forbidden")
    # `error` lets the openai SDK raise APIError; the mistralai SDK raises on the shape.
    body["error"] = {"message": body["message"], "type": body["type"], "code": body["code"]}
    body["guardrails"] = report
    return f"data: {json.dumps(body, separators=(',', ':'))}\n\n"
