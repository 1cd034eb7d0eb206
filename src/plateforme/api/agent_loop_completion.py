"""POST /v1/agents/completions for an agent with tools the platform runs (document_library,
connector): the chat messages become one response of the conversation loop (nothing stored), and
its answer is told as a chat completion, JSON or chat.completion.chunk events.

    messages -> history entries (every message up to the last assistant one: message.output,
                function.call for its tool_calls, function.result for tool messages)
                + inputs (the user messages and tool results after it)
    loop     -> the platform's tools run inside (each model step through the request pipeline);
                client function calls end the response as `tool_calls` (finish_reason tool_calls)

The answer's content is the text of its message.output entries (citations' tool_reference chunks
are conversation content: GET them through /v1/conversations; here the [n] text stays).
"""

import json
import logging
import time
import uuid

from fastapi import Request
from fastapi.responses import StreamingResponse

from plateforme.agents.errors import BadInput
from plateforme.api.errors import error_body, status_of
from plateforme.api.schemas.chat import ChatCompletionResponse
from plateforme.conversations.entries import input_entries, new_entry, text_of
from plateforme.conversations.items import DoneItem, EventItem
from plateforme.conversations.loop import Turn
from plateforme.pipeline.guards import RequestRefused

_DONE = "data: [DONE]\n\n"
log = logging.getLogger("plateforme.api")


def _content(message) -> str:
    return text_of(message.get("content"))


def _entries_of(messages: list[dict]) -> tuple[list[dict], list[dict]]:
    """(history, inputs) of the request's chat messages."""
    for i, message in enumerate(messages):
        if message["role"] == "system":
            raise BadInput(f"messages.{i}: a system message; this agent's instructions are its system prompt "
                           "(update the agent, or send the text as a user message)", f"messages.{i}.role")
    last_assistant = max((i for i, m in enumerate(messages) if m["role"] == "assistant"), default=-1)
    history: list[dict] = []
    for message in messages[:last_assistant + 1]:
        role = message["role"]
        if role == "user":
            history.append(new_entry("message.input", role="user", content=_content(message), prefix=False))
        elif role == "assistant":
            if _content(message):
                history.append(new_entry("message.output", role="assistant", content=_content(message)))
            for call in message.get("tool_calls") or []:
                arguments = call["function"]["arguments"]
                history.append(new_entry("function.call", tool_call_id=call.get("id") or uuid.uuid4().hex[:9],
                                         name=call["function"]["name"],
                                         arguments=arguments if isinstance(arguments, str) else json.dumps(arguments)))
        else:
            history.append(new_entry("function.result", tool_call_id=message.get("tool_call_id") or "",
                                     result=_content(message)))
    inputs = []
    for i, message in enumerate(messages[last_assistant + 1:], start=last_assistant + 1):
        if message["role"] == "user":
            inputs.append({"type": "message.input", "role": "user", "content": _content(message)})
        elif message["role"] == "tool":
            inputs.append({"type": "function.result", "tool_call_id": message.get("tool_call_id") or "",
                           "result": _content(message)})
        else:
            raise BadInput(f"messages.{i}: a {message['role']} message; after the last assistant message send "
                           "user messages or tool results", f"messages.{i}.role")
    if not inputs:
        raise BadInput("messages: nothing to answer after the last assistant message; add a user message "
                       "or the tool results", "messages")
    return history, input_entries(inputs, "messages")


def _tool_calls(outputs: list[dict]) -> list[dict]:
    return [{"id": e["tool_call_id"], "type": "function", "index": i,
             "function": {"name": e["name"], "arguments": e["arguments"]}}
            for i, e in enumerate(o for o in outputs if o["type"] == "function.call")]


def _answer_text(outputs: list[dict]) -> str:
    return "".join(_content(e) for e in outputs if e["type"] == "message.output")


async def prepare_loop(request: Request, agent, messages: list[dict], completion_args: dict,
                       guardrails: list | None):
    """The loop's prepared response (every 4xx raised here, before anything runs)."""
    history, inputs = _entries_of(messages)
    turn = Turn(request.state.principal, "conv_" + uuid.uuid4().hex, history=history, inputs=inputs, agent=agent,
                completion_args=completion_args, guardrails=guardrails)
    loop = request.app.state.conversations.loop
    return loop, await loop.prepare(turn)


async def serve_loop_completion(request: Request, agent, messages: list[dict], completion_args: dict,
                                stream: bool, guardrails: list | None = None):
    loop, prepared = await prepare_loop(request, agent, messages, completion_args, guardrails)
    call_id, created, model = "cmpl-" + uuid.uuid4().hex, int(time.time()), agent.model
    if stream:
        return StreamingResponse(_sse(loop.run(prepared), call_id, created, model), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
    done = None
    async for item in loop.run(prepared):
        if isinstance(item, DoneItem):
            done = item
    calls = _tool_calls(done.outputs)
    return ChatCompletionResponse.model_validate({
        "id": call_id, "model": model, "created": created, "usage": done.usage, "guardrails": done.guardrails,
        "choices": [{"index": 0, "finish_reason": "tool_calls" if calls else "stop",
                     "message": {"role": "assistant", "content": _answer_text(done.outputs),
                                 "tool_calls": calls or None}}]})


def _chunk(call_id: str, created: int, model: str, delta: dict, finish: str | None = None, **extra) -> str:
    body = {"id": call_id, "object": "chat.completion.chunk", "created": created, "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}], **extra}
    return f"data: {json.dumps(body, separators=(',', ':'))}\n\n"


async def _sse(items, call_id: str, created: int, model: str):
    yield _chunk(call_id, created, model, {"role": "assistant", "content": ""})
    try:
        async for item in items:
            if isinstance(item, EventItem) and item.type == "message.output.delta":
                content = item.event["content"]
                text = content if isinstance(content, str) else content.get("text") if content.get("type") == "text" \
                    else None
                if text:
                    yield _chunk(call_id, created, model, {"content": text})
            elif isinstance(item, DoneItem):
                calls = _tool_calls(item.outputs)
                if calls:
                    yield _chunk(call_id, created, model, {"tool_calls": calls})
                yield _chunk(call_id, created, model, {"content": ""}, "tool_calls" if calls else "stop",
                             usage=item.usage)
    except Exception as exc:  # after the stream started: an error event, no [DONE]
        status, kind = status_of(exc)
        message = f"Request blocked: {exc}." if isinstance(exc, RequestRefused) else str(exc)
        if status == 500:
            log.exception("agent completion stream %s failed", call_id)
            message = f"generation failed: {type(exc).__name__}: {exc}; see the server log"
        body = error_body(status, message, kind)
        body["error"] = {"message": body["message"], "type": body["type"], "code": body["code"]}
        yield f"data: {json.dumps(body, separators=(',', ':'))}\n\n"
        return
    yield _DONE
