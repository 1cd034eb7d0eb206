"""Fine-tuned model shapes of Mistral's spec: CompletionFTModelOut, ClassifierFTModelOut,
archive/unarchive answers, DeleteModelOut (FTModelCard is with the other model cards)."""

from typing import Literal

from pydantic import BaseModel

from plateforme.api.schemas.fine_tuning import ClassifierTargetOut
from plateforme.models.spec import ModelSpec
from plateforme.storage.fine_tuning_tables import FineTunedModel


class FTModelCapabilitiesOut(BaseModel):
    completion_chat: bool = True
    completion_fim: bool = False
    function_calling: bool = True
    fine_tuning: bool = False
    classification: bool = False


class CompletionFTModelOut(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str
    workspace_id: str
    root: str
    root_version: str
    archived: bool
    name: str | None = None
    description: str | None = None
    capabilities: FTModelCapabilitiesOut
    max_context_length: int
    aliases: list[str] = []
    job: str
    model_type: Literal["completion"] = "completion"

    @classmethod
    def of(cls, row: FineTunedModel, base: ModelSpec | None) -> "CompletionFTModelOut":
        return cls(id=row.id, created=int(row.created_at.timestamp()), owned_by=row.workspace_id,
                   workspace_id=row.workspace_id, root=row.root, root_version=str(base.created if base else 0),
                   archived=row.archived, name=row.name, description=row.description,
                   capabilities=FTModelCapabilitiesOut(),
                   max_context_length=base.context_length if base else 0, job=row.job_id)


class ClassifierFTModelOut(CompletionFTModelOut):
    """A classifier fine-tune: a head over an embedding model (`root`)."""
    classifier_targets: list[ClassifierTargetOut]
    model_type: Literal["classifier"] = "classifier"

    @classmethod
    def of(cls, row: FineTunedModel, base: ModelSpec | None) -> "ClassifierFTModelOut":
        return cls(id=row.id, created=int(row.created_at.timestamp()), owned_by=row.workspace_id,
                   workspace_id=row.workspace_id, root=row.root, root_version=str(base.created if base else 0),
                   archived=row.archived, name=row.name, description=row.description,
                   capabilities=FTModelCapabilitiesOut(completion_chat=False, function_calling=False,
                                                       classification=True),
                   max_context_length=(base.window or base.context_length) if base else 0, job=row.job_id,
                   classifier_targets=[ClassifierTargetOut(**t) for t in row.classifier_targets or []])


def ft_model_out(row: FineTunedModel, base: ModelSpec | None) -> CompletionFTModelOut | ClassifierFTModelOut:
    if row.model_type == "classifier":
        return ClassifierFTModelOut.of(row, base)
    return CompletionFTModelOut.of(row, base)


class UpdateFTModelIn(BaseModel):
    name: str | None = None
    description: str | None = None


class ArchiveFTModelOut(BaseModel):
    id: str
    object: Literal["model"] = "model"
    archived: bool = True


class UnarchiveFTModelOut(BaseModel):
    id: str
    object: Literal["model"] = "model"
    archived: bool = False


class DeleteModelOut(BaseModel):
    id: str
    object: str = "model"
    deleted: bool = True
