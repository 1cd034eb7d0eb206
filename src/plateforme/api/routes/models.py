"""GET /v1/models and /v1/models/{model_id} (base models, moderation models and the workspace's
fine-tunes: completion models and classifiers), and DELETE /v1/models/{model_id} for fine-tuned models."""

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from plateforme.api.errors import APIError
from plateforme.api.schemas.fine_tuned_models import DeleteModelOut
from plateforme.api.schemas.models import BaseModelCard, FTModelCard, ModelList
from plateforme.fine_tuning.fine_tuned_models import PREFIX
from plateforme.models.capabilities import supports_fim
from plateforme.models.reasoning import is_reasoning
from plateforme.models.spec import ModelSpec

router = APIRouter()


@router.get("/v1/models", response_model=ModelList)
async def list_models(request: Request) -> ModelList:
    registry = request.app.state.registry
    base = [await _card(spec, request) for spec in registry.specs]
    moderation = getattr(request.app.state, "moderation", None)
    if moderation is not None:
        base += [BaseModelCard.model_validate(card) for card in moderation.cards()]
    tuned = await request.app.state.fine_tuned_models.list(request.state.principal)
    return ModelList(data=base + [FTModelCard.of(row, registry.get(row.root)) for row in tuned])


@router.get("/v1/models/{model_id}", response_model=BaseModelCard | FTModelCard)
async def retrieve_model(model_id: str, request: Request) -> BaseModelCard | FTModelCard:
    registry = request.app.state.registry
    if model_id.startswith(PREFIX) and registry.get(model_id) is None:
        row = await request.app.state.fine_tuned_models.get(request.state.principal, model_id)
        return FTModelCard.of(row, registry.get(row.root))
    moderation = getattr(request.app.state, "moderation", None)
    card = moderation.card(model_id) if moderation is not None and registry.get(model_id) is None else None
    if card is not None:
        return BaseModelCard.model_validate(card)
    return await _card(registry.require(model_id), request)


@router.delete("/v1/models/{model_id}", response_model=DeleteModelOut)
async def delete_model(model_id: str, request: Request) -> DeleteModelOut:
    if request.app.state.registry.get(model_id) is not None:
        raise APIError(400, f"{model_id!r} is a base model of this server's configuration; only fine-tuned "
                       "models can be deleted through the API", param="model_id")
    row = await request.app.state.fine_tuned_models.delete(request.state.principal, model_id)
    await request.app.state.audit.arecord(request.state.principal, "model.delete", "model", row.id,
                                          request.client.host if request.client else None)
    return DeleteModelOut(id=row.id)


def _features(spec: ModelSpec) -> tuple[bool, bool]:
    """(fill-in-the-middle, reasoning): read from the model's files once, then cached."""
    return supports_fim(spec), is_reasoning(spec)


async def _card(spec: ModelSpec, request: Request) -> BaseModelCard:
    if spec.embedding:
        return BaseModelCard.for_embedding(spec, request.app.state.embeddings.info(spec.name).dimension)
    fim, reasoning = await run_in_threadpool(_features, spec)
    return BaseModelCard.from_spec(spec, fim=fim, reasoning=reasoning)
