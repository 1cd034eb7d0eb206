"""POST /v1/fim/completions."""

from fastapi import APIRouter, Request

from plateforme.api.completions import serve_completion
from plateforme.api.schemas.chat import ChatCompletionResponse
from plateforme.api.schemas.fim import FIMCompletionRequest

router = APIRouter()


@router.post("/v1/fim/completions", response_model=ChatCompletionResponse, response_model_exclude_none=True)
async def fim_completions(body: FIMCompletionRequest, request: Request):
    return await serve_completion(request, "fim", body.to_fim_request(), bool(body.stream))
