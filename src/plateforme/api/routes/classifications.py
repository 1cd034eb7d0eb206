"""POST /v1/classifications and /v1/chat/classifications: scores of texts, or of conversations,
by one of the workspace's classifier fine-tunes (classifiers/service.py)."""

from fastapi import APIRouter, Request
from fastapi.responses import Response

from plateforme.api.completions import CLIENT_CLOSED_REQUEST
from plateforme.api.disconnect import ClientDisconnected, unless_disconnected
from plateforme.api.errors import APIError
from plateforme.api.schemas.classifications import (ChatClassificationRequest, ClassificationInputError,
                                                    ClassificationRequest, ClassificationResponse)
from plateforme.classifiers.conversation_text import ConversationInvalid
from plateforme.classifiers.service import ClassificationInputInvalid, ClassifierNotFound, NotAClassifier
from plateforme.embeddings.service import EmbeddingInputInvalid, EmbeddingInputTooLong

router = APIRouter()


def _refuse_other_models(request: Request, model: str) -> None:
    """A moderation, chat or embedding model is not a classifier: say what to use instead."""
    moderation = getattr(request.app.state, "moderation", None)
    if moderation is not None and model in moderation.models():
        path = request.url.path.replace("classifications", "moderations")
        raise APIError(400, f"{model!r} is a moderation model: moderate with POST {path}; "
                       f"{request.url.path} takes your classifier fine-tunes", param="model")
    spec = request.app.state.registry.get(model)
    if spec is not None:
        kind = "an embedding" if spec.embedding else "a chat"
        raise APIError(400, f"{spec.name!r} is {kind} model, not a classifier; train a classifier over an "
                       "embedding model with POST /v1/fine_tuning/jobs (job_type 'classifier') and classify with "
                       "its fine-tuned model", param="model")


async def _answer(request: Request, model: str, work) -> ClassificationResponse | Response:
    """`work()`: the service's call, started once the model is known to be worth asking for."""
    _refuse_other_models(request, model)
    try:
        outcome = await unless_disconnected(request, work())
    except ClientDisconnected:
        return Response(status_code=CLIENT_CLOSED_REQUEST)
    except ClassifierNotFound as exc:
        raise APIError(404, str(exc), "invalid_model", param="model") from exc
    except NotAClassifier as exc:
        raise APIError(400, str(exc), param="model") from exc
    except (ClassificationInputInvalid, ConversationInvalid, EmbeddingInputInvalid) as exc:
        raise APIError(400, str(exc), param="input") from exc
    except EmbeddingInputTooLong as exc:
        raise APIError(400, str(exc), "context_length_exceeded", param="input") from exc
    return ClassificationResponse.of(outcome.model, outcome.results, outcome.prompt_tokens)


@router.post("/v1/classifications", response_model=ClassificationResponse)
async def classify(body: ClassificationRequest, request: Request):
    try:
        texts = body.texts()
    except ClassificationInputError as exc:
        raise APIError(400, str(exc), param="input") from exc
    service = request.app.state.classifiers
    return await _answer(request, body.model, lambda: service.classify(request.state.principal, body.model, texts))


@router.post("/v1/chat/classifications", response_model=ClassificationResponse)
async def classify_chat(body: ChatClassificationRequest, request: Request):
    try:
        conversations = body.conversations()
    except ClassificationInputError as exc:
        raise APIError(400, str(exc), param="input") from exc
    service = request.app.state.classifiers
    return await _answer(request, body.model,
                         lambda: service.classify_chat(request.state.principal, body.model, conversations))
