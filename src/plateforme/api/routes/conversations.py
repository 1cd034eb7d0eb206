"""The Conversations API (Mistral's beta): /v1/conversations start, list, get, append, delete,
history, messages, restart; each response as JSON or as Mistral's named server-sent events.

A streamed response is `event: <type>\\ndata: <json>\\n\\n` per event of the loop
(conversation.response.started ... conversation.response.done). Bad input is answered before the
stream starts, as an HTTP error in Mistral's shape; a failure once it started is a
conversation.response.error event {message, code} and the end of the stream.
"""

import json
import logging

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import StreamingResponse

from plateforme.api.completions import CLIENT_CLOSED_REQUEST
from plateforme.api.disconnect import ClientDisconnected, unless_disconnected
from plateforme.api.errors import APIError, status_of
from plateforme.api.schemas.conversations import (ConversationAppendRequest, ConversationRequest,
                                                  ConversationRestartRequest, args_dict, confirmations,
                                                  conversation_view, history_view, messages_view)
from plateforme.conversations.entries import now_iso
from plateforme.conversations.items import EventItem
from plateforme.conversations.service import ConversationService, Options

log = logging.getLogger("plateforme.api")
router = APIRouter()
# What the mistralai SDK (3.x) sends as `metadata` when the caller gives none (its UNSET sentinel, as JSON).
_SDK_UNSET = "~?~unset~?~sentinel~?~"
_SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def service(request: Request) -> ConversationService:
    return request.app.state.conversations


def sse_event(event: dict) -> str:
    return f"event: {event['type']}\ndata: {json.dumps(event, separators=(',', ':'))}\n\n"


async def _sse(response):
    try:
        async for item in response.items():
            if isinstance(item, EventItem):
                yield sse_event(item.event)
    except Exception as exc:  # the service ended the response failed; the client reads why
        status, _ = status_of(exc)
        message = str(exc) if status != 500 else "internal server error; see the server log"
        if status == 500:
            log.exception("conversation %s: the streamed response failed", response.conversation_id, exc_info=exc)
        yield sse_event({"type": "conversation.response.error", "created_at": now_iso(), "message": message,
                         "code": status})


async def _answer(request: Request, response, stream: bool):
    if stream:
        return StreamingResponse(_sse(response), media_type="text/event-stream", headers=_SSE_HEADERS)
    try:
        # A client that leaves stops the response (it is ended failed; what was made is kept).
        return await unless_disconnected(request, response.result())
    except ClientDisconnected:
        return Response(status_code=CLIENT_CLOSED_REQUEST)


@router.post("/v1/conversations")
async def start_conversation(body: ConversationRequest, request: Request):
    options = Options(store=body.store is not False, handoff_execution=body.handoff_execution or "server",
                      completion_args=args_dict(body.completion_args))
    response = await service(request).start(request.state.principal, body.inputs, body.settings(), options)
    return await _answer(request, response, bool(body.stream))


@router.get("/v1/conversations")
async def list_conversations(request: Request, page: int = Query(0, ge=0, le=10_000_000),
                             page_size: int = Query(100, ge=1, le=1000),
                             metadata: str | None = None) -> list[dict]:
    wanted = None
    if metadata:
        try:
            wanted = json.loads(metadata)
        except ValueError:
            wanted = []
        if wanted in (None, _SDK_UNSET):  # JSON null, or the mistralai SDK's "not given": no filter
            wanted = None
        elif not isinstance(wanted, dict):
            raise APIError(400, 'metadata: a JSON object of the values to match, e.g. {"team": "sales"}',
                           param="metadata")
    found = await service(request).list(request.state.principal, page, page_size, wanted)
    return [conversation_view(record) for record in found]


@router.get("/v1/conversations/{conversation_id}")
async def get_conversation(conversation_id: str, request: Request) -> dict:
    return conversation_view(await service(request).get(request.state.principal, conversation_id))


@router.delete("/v1/conversations/{conversation_id}", status_code=204)
async def delete_conversation(conversation_id: str, request: Request) -> Response:
    await service(request).delete(request.state.principal, conversation_id)
    await request.app.state.audit.arecord(request.state.principal, "conversation.delete", "conversation",
                                          conversation_id, request.client.host if request.client else None)
    return Response(status_code=204)


@router.post("/v1/conversations/{conversation_id}")
async def append_conversation(conversation_id: str, body: ConversationAppendRequest, request: Request):
    options = Options(store=body.store, handoff_execution=body.handoff_execution,
                      completion_args=args_dict(body.completion_args),
                      tool_confirmations=confirmations(body.tool_confirmations))
    response = await service(request).append(request.state.principal, conversation_id, body.inputs, options)
    return await _answer(request, response, body.stream)


@router.get("/v1/conversations/{conversation_id}/history")
async def conversation_history(conversation_id: str, request: Request) -> dict:
    return history_view(conversation_id, await service(request).history(request.state.principal, conversation_id))


@router.get("/v1/conversations/{conversation_id}/messages")
async def conversation_messages(conversation_id: str, request: Request) -> dict:
    return messages_view(conversation_id, await service(request).messages(request.state.principal, conversation_id))


@router.post("/v1/conversations/{conversation_id}/restart")
async def restart_conversation(conversation_id: str, body: ConversationRestartRequest, request: Request):
    options = Options(store=body.store, handoff_execution=body.handoff_execution,
                      completion_args=args_dict(body.completion_args))
    response = await service(request).restart(request.state.principal, conversation_id, body.from_entry_id,
                                              body.inputs, options, metadata=body.metadata,
                                              guardrails=body.guardrails, agent_version=body.agent_version)
    return await _answer(request, response, body.stream)
