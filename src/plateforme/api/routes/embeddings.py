"""POST /v1/embeddings: through the request pipeline (limits, budgets, usage, metrics), then
shaped as the caller asked (embeddings/output_format.py)."""

import asyncio
import json
import secrets

from fastapi import APIRouter, Request
from fastapi.responses import Response

from plateforme.api.completions import CLIENT_CLOSED_REQUEST
from plateforme.api.disconnect import ClientDisconnected, unless_disconnected
from plateforme.api.errors import APIError
from plateforme.api.schemas.embeddings import EmbeddingRequest, EmbeddingResponse
from plateforme.embeddings.output_format import output_embeddings
from plateforme.embeddings.service import (EmbeddingInputInvalid, EmbeddingInputTooLong, EmbeddingModelNotFound,
                                           EmbeddingsRequest, NotAnEmbeddingModel)
from plateforme.pipeline.call import GenerationCall

router = APIRouter()


def _checked(body: EmbeddingRequest, service) -> tuple[list[str], str, int | None]:
    """(texts, served model name, output dimension) or APIError saying what is wrong."""
    try:
        texts = body.texts()
    except ValueError as exc:
        raise APIError(400, str(exc), param="input") from exc
    empty = next((i for i, t in enumerate(texts) if not t.strip()), None)
    if empty is not None:
        raise APIError(400, f"input[{empty}] is empty: every input must have some text", param="input")
    try:
        info = service.info(body.model)
    except NotAnEmbeddingModel as exc:
        raise APIError(400, str(exc), param="model") from exc
    except EmbeddingModelNotFound as exc:
        raise APIError(404, str(exc), "invalid_model", param="model") from exc
    if body.output_dimension and body.dimensions and body.output_dimension != body.dimensions:
        raise APIError(400, "output_dimension and dimensions disagree: give one of them", param="output_dimension")
    dimension = body.dimension()
    if dimension is not None and dimension > info.dimension:
        raise APIError(400, f"output_dimension {dimension} is larger than the {info.dimension} dimensions of model "
                       f"{info.name!r}; ask for {info.dimension} or fewer", param="output_dimension")
    return texts, info.name, dimension


@router.post("/v1/embeddings", response_model=EmbeddingResponse)
async def embeddings(body: EmbeddingRequest, request: Request):
    state = request.app.state
    texts, name, dimension = _checked(body, state.embeddings)
    input_type = body.input_type or state.registry.require(name).input_type
    call = GenerationCall(request.state.principal, "embeddings", EmbeddingsRequest(body.model, texts, input_type))
    try:
        result = await unless_disconnected(request, state.pipeline.complete(call))
    except ClientDisconnected:
        return Response(status_code=CLIENT_CLOSED_REQUEST)
    except EmbeddingInputTooLong as exc:
        raise APIError(400, str(exc), "context_length_exceeded", param="input") from exc
    except EmbeddingInputInvalid as exc:
        raise APIError(400, str(exc), param="input") from exc
    # Shaping and serialising thousands of vectors is CPU work: off the event loop.
    content = await asyncio.to_thread(_render, result, body, dimension)
    return Response(content, media_type="application/json")


def _render(result, body: EmbeddingRequest, dimension: int | None) -> bytes:
    vectors = output_embeddings(result.vectors, dimension, body.output_dtype, body.encoding_format)
    tokens = result.usage.prompt_tokens
    return json.dumps({
        "id": "embd-" + secrets.token_hex(16),
        "object": "list",
        "data": [{"object": "embedding", "embedding": v, "index": i} for i, v in enumerate(vectors)],
        "model": body.model,
        "usage": {"prompt_tokens": tokens, "completion_tokens": 0, "total_tokens": tokens},
    }, separators=(",", ":")).encode()
