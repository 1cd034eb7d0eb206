"""GET /v1/models and /v1/models/{model_id}."""

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from plateforme.api.schemas.models import BaseModelCard, ModelList
from plateforme.models.capabilities import supports_fim
from plateforme.models.spec import ModelSpec

router = APIRouter()


@router.get("/v1/models", response_model=ModelList)
async def list_models(request: Request) -> ModelList:
    registry = request.app.state.registry
    return ModelList(data=[await _card(spec) for spec in registry.specs])


@router.get("/v1/models/{model_id}", response_model=BaseModelCard)
async def retrieve_model(model_id: str, request: Request) -> BaseModelCard:
    spec = request.app.state.registry.require(model_id)
    return await _card(spec)


async def _card(spec: ModelSpec) -> BaseModelCard:
    return BaseModelCard.from_spec(spec, fim=await run_in_threadpool(supports_fim, spec))
