"""Serialise a chat stream as Mistral's server-sent events (`data: {chunk}` ... `data: [DONE]`)."""

import json
import logging
from collections.abc import AsyncIterator

from plateforme.api.completion_shapes import chunk_choice
from plateforme.api.errors import error_body
from plateforme.chat.types import Delta, Usage
from plateforme.engines.errors import EngineRejected, EngineUnavailable

log = logging.getLogger("plateforme.api")


def _event(payload: dict) -> str:
    return f"data: {json.dumps(payload, separators=(',', ':'))}\n\n"


async def chat_sse(events: AsyncIterator[Delta | Usage], completion_id: str, model: str,
                   created: int) -> AsyncIterator[str]:
    """Chunks with `finish_reason: null` until each choice's last; `usage` on the very last chunk.

    A choice's finishing chunk is held back until the usage is known, so the final chunk carries
    both. If generation fails mid-stream (the worker, or anything else) the client gets an error
    event (which both the mistralai and openai SDKs raise), never a silently truncated answer.
    (`events` comes from the request pipeline, which bills it once whatever ends it.)
    """
    head = {"id": completion_id, "object": "chat.completion.chunk", "created": created, "model": model}

    def chunk(delta: Delta) -> dict:
        return {**head, "choices": [chunk_choice(delta)]}

    held: list[dict] = []
    try:
        async for item in events:
            if isinstance(item, Usage):
                last = held.pop() if held else {**head, "choices": []}
                for pending in held:
                    yield _event(pending)
                held.clear()
                last["usage"] = {"prompt_tokens": item.prompt_tokens,
                                 "completion_tokens": item.completion_tokens,
                                 "total_tokens": item.total_tokens}
                yield _event(last)
            elif item.finish_reason is not None:
                held.append(chunk(item))
            else:
                yield _event(chunk(item))
        yield "data: [DONE]\n\n"
    except (EngineUnavailable, EngineRejected) as exc:
        log.warning("stream %s failed: %s", completion_id, exc)
        status = 503 if isinstance(exc, EngineUnavailable) else 400
        yield _error_event(status, f"generation failed: {exc}", "service_unavailable")
    except Exception as exc:  # anything else: said in the stream too, counted and logged
        log.exception("stream %s failed", completion_id)
        yield _error_event(500, f"generation failed: internal error ({type(exc).__name__}); "
                           "see the server log", "internal_error")
    finally:
        await events.aclose()


def _error_event(status: int, message: str, kind: str) -> str:
    body = error_body(status, message, kind)
    # `error` lets the openai SDK raise APIError; the mistralai SDK raises on the shape.
    body["error"] = {"message": body["message"], "type": body["type"], "code": body["code"]}
    return _event(body)
