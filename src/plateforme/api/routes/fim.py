"""POST /v1/fim/completions."""

import secrets
import time

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse

from plateforme.api.schemas.chat import AssistantMessageOut, ChatCompletionChoice, ChatCompletionResponse, UsageInfo
from plateforme.api.schemas.fim import FIMCompletionRequest
from plateforme.api.metering import admit_billable, usage_recorder
from plateforme.api.streaming import chat_sse

router = APIRouter()


@router.post("/v1/fim/completions", response_model=ChatCompletionResponse, response_model_exclude_none=True)
async def fim_completions(body: FIMCompletionRequest, request: Request):
    service = request.app.state.fim
    fim_request = body.to_fim_request()
    who = await admit_billable(request)
    fim_request.tenant = who.workspace_id
    completion_id = "cmpl-" + secrets.token_hex(16)
    record_usage = usage_recorder(request, body.model, "fim", completion_id)
    created = int(time.time())
    if body.stream:
        events = service.stream(fim_request)
        # Run the checks (model, FIM tokens, capacity, context) now, so they are answered as HTTP errors.
        first = await anext(events)
        return StreamingResponse(
            chat_sse(first, events, completion_id, body.model, created, record_usage),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )
    result = await service.complete(fim_request)
    await record_usage(result.usage)
    return ChatCompletionResponse(
        id=completion_id, model=body.model, created=created,
        choices=[ChatCompletionChoice(index=c.index, finish_reason=c.finish_reason,
                                      message=AssistantMessageOut(content=c.content))
                 for c in result.choices],
        usage=UsageInfo(prompt_tokens=result.usage.prompt_tokens, completion_tokens=result.usage.completion_tokens,
                        total_tokens=result.usage.total_tokens),
    )
