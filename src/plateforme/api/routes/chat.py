"""POST /v1/chat/completions."""

import secrets
import time

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse

from plateforme.api.errors import APIError
from plateforme.api.schemas.chat import (
    AssistantMessageOut, ChatCompletionChoice, ChatCompletionRequest, ChatCompletionResponse,
    UsageInfo,
)
from plateforme.api.metering import admit_billable, usage_recorder
from plateforme.api.streaming import chat_sse

router = APIRouter()


@router.post("/v1/chat/completions", response_model=ChatCompletionResponse, response_model_exclude_none=True)
async def chat_completions(body: ChatCompletionRequest, request: Request):
    unsupported = body.unsupported_fields()
    if unsupported:
        raise APIError(400, f"{', '.join(unsupported)}: not supported by this server yet; "
                       "remove the field(s) from the request.", param=unsupported[0])
    service = request.app.state.chat
    chat_request = body.to_chat_request()
    who = await admit_billable(request)
    chat_request.tenant = who.workspace_id
    completion_id = "cmpl-" + secrets.token_hex(16)
    record_usage = usage_recorder(request, body.model, "chat", completion_id)
    created = int(time.time())
    if body.stream:
        events = service.stream(chat_request)
        # Run the checks (model, capacity, context) now, so they are answered as HTTP errors.
        first = await anext(events)
        return StreamingResponse(
            chat_sse(first, events, completion_id, body.model, created, record_usage),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )
    result = await service.complete(chat_request)
    await record_usage(result.usage)
    return ChatCompletionResponse(
        id=completion_id, model=body.model, created=created,
        choices=[
            ChatCompletionChoice(
                index=c.index, finish_reason=c.finish_reason,
                message=AssistantMessageOut(content=c.content, tool_calls=c.tool_calls or None),
                logprobs={"content": c.logprobs} if c.logprobs is not None else None)
            for c in result.choices
        ],
        usage=UsageInfo(prompt_tokens=result.usage.prompt_tokens,
                        completion_tokens=result.usage.completion_tokens,
                        total_tokens=result.usage.total_tokens),
    )
