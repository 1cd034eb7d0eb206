"""POST /v1/chat/completions."""

from fastapi import APIRouter, Request

from plateforme.api.completions import serve_completion
from plateforme.api.errors import APIError
from plateforme.api.schemas.chat import ChatCompletionRequest, ChatCompletionResponse

router = APIRouter()


@router.post("/v1/chat/completions", response_model=ChatCompletionResponse, response_model_exclude_none=True)
async def chat_completions(body: ChatCompletionRequest, request: Request):
    unsupported = body.unsupported_fields()
    if unsupported:
        raise APIError(400, f"{', '.join(unsupported)}: not supported by this server yet; "
                       "remove the field(s) from the request.", param=unsupported[0])
    return await serve_completion(request, "chat", body.to_chat_request(), bool(body.stream), traced=body)
