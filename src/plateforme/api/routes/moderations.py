"""POST /v1/moderations (texts) and POST /v1/chat/moderations (conversations: the last turn is
judged in its context), through the moderation service (moderation/service.py): metered and
limited by the request pipeline, answered in Mistral's ModerationResponse shape plus `usage`."""

import json
import secrets

from fastapi import APIRouter, Request
from fastapi.responses import Response

from plateforme.api.completions import CLIENT_CLOSED_REQUEST
from plateforme.api.disconnect import ClientDisconnected, unless_disconnected
from plateforme.api.errors import APIError
from plateforme.api.schemas.classifications import ClassificationRequest
from plateforme.api.schemas.moderations import ChatModerationRequest, ModerationInputError, ModerationResponse
from plateforme.embeddings.service import EmbeddingInputInvalid, EmbeddingInputTooLong
from plateforme.moderation.provider import ModerationInput, ModerationProviderError
from plateforme.moderation.service import (ModerationInputInvalid, ModerationModelNotFound, ModerationOutcome,
                                           ModerationUnavailable)

router = APIRouter()


def _service(request: Request, model: str):
    service = request.app.state.moderation
    try:
        service.resolve(model)
    except ModerationModelNotFound as exc:
        raise APIError(404, str(exc), "invalid_model", param="model") from exc
    except ModerationUnavailable as exc:
        raise APIError(503, str(exc), "service_unavailable", param="model") from exc
    return service


async def _moderate(request: Request, model: str, items: list[ModerationInput]):
    service = _service(request, model)
    try:
        outcome = await unless_disconnected(request, service.moderate(request.state.principal, model, items))
    except ClientDisconnected:
        return Response(status_code=CLIENT_CLOSED_REQUEST)
    except EmbeddingInputTooLong as exc:
        raise APIError(400, str(exc), "context_length_exceeded", param="input") from exc
    except (EmbeddingInputInvalid, ModerationInputInvalid) as exc:
        raise APIError(400, str(exc), param="input") from exc
    except ModerationProviderError as exc:
        raise APIError(503, f"{exc}; retry later, or ask the operator to check the provider", "service_unavailable",
                       headers={"Retry-After": "5"}) from exc
    return _answer(outcome)


def _answer(outcome: ModerationOutcome) -> Response:
    """The ModerationResponse, serialised here (one text's answer is on the latency path)."""
    tokens = outcome.prompt_tokens
    return Response(json.dumps({
        "id": "mod-" + secrets.token_hex(16), "model": outcome.model,
        "results": [{"categories": r.categories, "category_scores": r.category_scores} for r in outcome.results],
        "usage": {"prompt_tokens": tokens, "completion_tokens": 0, "total_tokens": tokens},
    }, separators=(",", ":")).encode(), media_type="application/json")


@router.post("/v1/moderations", response_model=ModerationResponse)
async def moderations(body: ClassificationRequest, request: Request):
    try:
        texts = body.texts()
    except ModerationInputError as exc:
        raise APIError(400, str(exc), param=exc.param) from exc
    return await _moderate(request, body.model, [ModerationInput(text) for text in texts])


@router.post("/v1/chat/moderations", response_model=ModerationResponse)
async def chat_moderations(body: ChatModerationRequest, request: Request):
    try:
        conversations = body.conversations()
    except ModerationInputError as exc:
        raise APIError(400, str(exc), param=exc.param) from exc
    items = [ModerationInput(turns[-1]["content"], tuple(turns[:-1]), turns[-1]["role"]) for turns in conversations]
    return await _moderate(request, body.model, items)
