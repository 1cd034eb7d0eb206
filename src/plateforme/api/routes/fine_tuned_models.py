"""Fine-tuned models (completion models and classifiers): PATCH /v1/fine_tuning/models/{id},
archive and unarchive."""

from fastapi import APIRouter, Request

from plateforme.api.schemas.fine_tuned_models import (ArchiveFTModelOut, ClassifierFTModelOut, CompletionFTModelOut,
                                                      UnarchiveFTModelOut, UpdateFTModelIn, ft_model_out)
from plateforme.fine_tuning.model_service import FineTunedModelService

router = APIRouter()


def _service(request: Request) -> FineTunedModelService:
    return request.app.state.fine_tuned_models


async def _audit(request: Request, action: str, model_id: str) -> None:
    await request.app.state.audit.arecord(request.state.principal, action, "model", model_id,
                                          request.client.host if request.client else None)


@router.patch("/v1/fine_tuning/models/{model_id}", response_model=ClassifierFTModelOut | CompletionFTModelOut)
async def update_model(request: Request, model_id: str,
                       body: UpdateFTModelIn) -> ClassifierFTModelOut | CompletionFTModelOut:
    row = await _service(request).update(request.state.principal, model_id, body.model_dump(exclude_unset=True))
    await _audit(request, "model.update", model_id)
    return ft_model_out(row, request.app.state.registry.get(row.root))


@router.post("/v1/fine_tuning/models/{model_id}/archive", response_model=ArchiveFTModelOut)
async def archive_model(request: Request, model_id: str) -> ArchiveFTModelOut:
    row = await _service(request).set_archived(request.state.principal, model_id, True)
    await _audit(request, "model.archive", model_id)
    return ArchiveFTModelOut(id=row.id)


@router.delete("/v1/fine_tuning/models/{model_id}/archive", response_model=UnarchiveFTModelOut)
async def unarchive_model(request: Request, model_id: str) -> UnarchiveFTModelOut:
    row = await _service(request).set_archived(request.state.principal, model_id, False)
    await _audit(request, "model.unarchive", model_id)
    return UnarchiveFTModelOut(id=row.id)
