"""The flow shared by chat and FIM completions: limits, streaming or not, usage recording."""

import secrets
import time

from fastapi import Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel

from plateforme.api.metering import admit_billable, usage_recorder
from plateforme.api.schemas.chat import AssistantMessageOut, ChatCompletionChoice, ChatCompletionResponse, UsageInfo
from plateforme.api.streaming import chat_sse


async def serve_completion(request: Request, service, service_request, model: str, stream: bool, route: str,
                           traced: BaseModel | None = None):
    """Run `service_request` on `service` (ChatService or FIMService) for the calling workspace.

    `traced`: the request as sent, captured with the answer when the workspace captures traces.
    """
    who = await admit_billable(request)
    service_request.tenant = who.workspace_id
    completion_id = "cmpl-" + secrets.token_hex(16)
    record_usage = usage_recorder(request, model, route, completion_id)
    created = int(time.time())
    capture = None if traced is None else \
        await request.app.state.traces.begin(who, completion_id, model, created, stream, traced)
    if stream:
        events = service.stream(service_request)
        if capture is not None:
            events = capture.wrap(events)
        # Run the checks (model, capacity, context...) now, so they are answered as HTTP errors.
        first = await anext(events)
        return StreamingResponse(
            chat_sse(first, events, completion_id, model, created, record_usage),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )
    result = await service.complete(service_request)
    await record_usage(result.usage)
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
