"""The flow shared by chat and FIM completions: limits, streaming or not, usage recording."""

import secrets
import time

from fastapi import Request
from fastapi.responses import Response, StreamingResponse
from pydantic import BaseModel

from plateforme.api.disconnect import ClientDisconnected, unless_disconnected
from plateforme.api.metering import UsageSettlement, admit_billable
from plateforme.api.schemas.chat import AssistantMessageOut, ChatCompletionChoice, ChatCompletionResponse, UsageInfo
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
    return ChatCompletionResponse(
        id=completion_id, model=model, created=created,
        choices=[
            ChatCompletionChoice(
                index=c.index, finish_reason=c.finish_reason,
                message=AssistantMessageOut(content=c.content, tool_calls=c.tool_calls or None),
                logprobs={"content": c.logprobs} if c.logprobs is not None else None)
            for c in result.choices
        ],
        usage=UsageInfo(prompt_tokens=result.usage.prompt_tokens, completion_tokens=result.usage.completion_tokens,
                        total_tokens=result.usage.total_tokens),
    )
