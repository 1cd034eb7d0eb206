"""Fine-tuning jobs as in Mistral's spec (JobIn, CompletionJobOut, CompletionDetailedJobOut,
ClassifierJobOut, ClassifierDetailedJobOut, JobsOut, LegacyJobMetadataOut)."""

from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator

from plateforme.fine_tuning.job_store import JobDetail
from plateforme.storage.fine_tuning_tables import FineTuningJob

Status = Literal["QUEUED", "STARTED", "VALIDATING", "VALIDATED", "RUNNING", "FAILED_VALIDATION", "FAILED",
                 "SUCCESS", "CANCELLED", "CANCELLATION_REQUESTED"]


class TrainingFile(BaseModel):
    file_id: UUID
    weight: float = Field(default=1.0, gt=0)


class CompletionTrainingParametersIn(BaseModel):
    training_steps: int | None = Field(default=None, ge=1)
    learning_rate: float = Field(default=1e-4, ge=1e-8, le=1)
    weight_decay: float | None = Field(default=0.1, ge=0, le=1)
    warmup_fraction: float | None = Field(default=0.05, ge=0, le=1)
    epochs: float | None = Field(default=None, gt=0)
    seq_len: int | None = Field(default=None, ge=100)
    fim_ratio: float | None = Field(default=0.9, ge=0, le=1)
    # plateforme's addition: the LoRA rank of the adapter.
    lora_rank: int = Field(default=16, ge=1, le=256)


class ClassifierTrainingParametersIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    training_steps: int | None = Field(default=None, ge=1)
    learning_rate: float | None = Field(default=None, ge=1e-8, le=1)
    weight_decay: float | None = Field(default=None, ge=0, le=1)
    warmup_fraction: float | None = Field(default=None, ge=0, le=1)
    epochs: float | None = Field(default=None, gt=0)
    seq_len: int | None = Field(default=None, ge=100)


class ClassifierTargetIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=200)
    labels: list[str] = Field(min_length=1)
    weight: float = Field(default=1.0, ge=0)
    loss_function: Literal["single_class", "multi_class"] | None = None


class JobIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    model: str
    training_files: list[TrainingFile] = []
    validation_files: list[UUID] | None = None
    suffix: str | None = Field(default=None, max_length=18)
    integrations: list[dict[str, Any]] | None = None
    auto_start: bool = True
    invalid_sample_skip_percentage: float = Field(default=0, ge=0, le=0.5)
    job_type: Literal["completion", "classifier"] | None = None
    # CompletionTrainingParametersIn, or ClassifierTrainingParametersIn for job_type "classifier"
    # (checked below against the one the job type takes).
    hyperparameters: dict[str, Any]
    repositories: list[dict[str, Any]] | None = None
    classifier_targets: list[ClassifierTargetIn] | None = None

    @field_validator("hyperparameters")
    @classmethod
    def _hyperparameters_of_the_job_type(cls, value: dict, info: ValidationInfo) -> dict:
        classifier = info.data.get("job_type") == "classifier"
        shape = ClassifierTrainingParametersIn if classifier else CompletionTrainingParametersIn
        try:
            parsed = shape.model_validate(value)
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()[:5])
            kind = "classifier" if classifier else "completion"
            raise ValueError(f"{problems} (a {kind} job takes {', '.join(shape.model_fields)})") from None
        # A classifier job's: only what was given (the job fills in the head's own defaults).
        return parsed.model_dump(exclude_none=True) if classifier else parsed.model_dump()


class JobMetadataOut(BaseModel):
    expected_duration_seconds: int | None = None
    cost: float | None = None
    cost_currency: str | None = None
    train_tokens_per_step: int | None = None
    train_tokens: int | None = None
    data_tokens: int | None = None
    estimated_start_time: int | None = None


class LegacyJobMetadataOut(JobMetadataOut):
    deprecated: bool = False
    details: str
    epochs: float | None = None
    training_steps: int | None = None
    object: Literal["job.metadata"] = "job.metadata"


class ClassifierTrainingParameters(BaseModel):
    training_steps: int | None = None
    learning_rate: float = 1e-4
    weight_decay: float | None = None
    warmup_fraction: float | None = None
    epochs: float | None = None
    seq_len: int | None = None


class CompletionTrainingParameters(ClassifierTrainingParameters):
    fim_ratio: float | None = None
    lora_rank: int | None = None


class EventOut(BaseModel):
    name: str
    data: dict[str, Any] | None = None
    created_at: int


class MetricOut(BaseModel):
    train_loss: float | None = None
    valid_loss: float | None = None
    valid_mean_token_accuracy: float | None = None


class TargetMetricsOut(BaseModel):
    valid_loss: float | None = None
    accuracy: float | None = None
    macro_f1: float | None = None


class ClassifierMetricOut(MetricOut):
    # plateforme's addition (a classifier job's checkpoints): the metrics of each target on the
    # validation examples; valid_mean_token_accuracy is their mean accuracy.
    classifier_metrics: dict[str, TargetMetricsOut]


class CheckpointOut(BaseModel):
    metrics: ClassifierMetricOut | MetricOut
    step_number: int
    created_at: int

    @classmethod
    def of(cls, c) -> "CheckpointOut":
        fields = dict(train_loss=c.train_loss, valid_loss=c.valid_loss,
                      valid_mean_token_accuracy=c.valid_mean_token_accuracy)
        metrics = ClassifierMetricOut(**fields, classifier_metrics=c.metrics) if c.metrics is not None \
            else MetricOut(**fields)
        return cls(step_number=c.step_number, created_at=int(c.created_at.timestamp()), metrics=metrics)


class CompletionJobOut(BaseModel):
    id: str
    auto_start: bool
    model: str
    status: Status
    created_at: int
    modified_at: int
    training_files: list[str]
    validation_files: list[str] | None = []
    object: Literal["job"] = "job"
    fine_tuned_model: str | None = None
    suffix: str | None = None
    integrations: list[dict[str, Any]] | None = None
    trained_tokens: int | None = None
    metadata: JobMetadataOut | None = None
    job_type: Literal["completion"] = "completion"
    hyperparameters: CompletionTrainingParameters
    repositories: list[dict[str, Any]] = []

    @classmethod
    def fields_of(cls, job: FineTuningJob) -> dict:
        meta = job.job_metadata
        return dict(
            id=job.id, auto_start=job.auto_start, model=job.model, status=job.status,
            created_at=int(job.created_at.timestamp()), modified_at=int(job.modified_at.timestamp()),
            training_files=[f["file_id"] for f in job.training_files], validation_files=job.validation_files,
            fine_tuned_model=job.fine_tuned_model, suffix=job.suffix, integrations=[],
            trained_tokens=job.trained_tokens,
            metadata=JobMetadataOut.model_validate({k: v for k, v in meta.items() if k in JobMetadataOut.model_fields})
            if meta else None,
            hyperparameters=CompletionTrainingParameters.model_validate(
                {k: v for k, v in job.hyperparameters.items() if k in CompletionTrainingParameters.model_fields}))

    @classmethod
    def of(cls, job: FineTuningJob) -> "CompletionJobOut":
        return cls(**cls.fields_of(job))


class CompletionDetailedJobOut(CompletionJobOut):
    events: list[EventOut] = []
    checkpoints: list[CheckpointOut] = []

    @classmethod
    def of_detail(cls, detail: JobDetail) -> "CompletionDetailedJobOut":
        return cls(
            **cls.fields_of(detail.job),
            events=_events(detail), checkpoints=[CheckpointOut.of(c) for c in detail.checkpoints])


def _events(detail: JobDetail) -> list[EventOut]:
    return [EventOut(name=e.name, data=e.data, created_at=int(e.created_at.timestamp())) for e in detail.events]


class ClassifierTargetOut(BaseModel):
    name: str
    labels: list[str]
    weight: float
    loss_function: Literal["single_class", "multi_class"]


class ClassifierJobOut(CompletionJobOut):
    job_type: Literal["classifier"] = "classifier"
    hyperparameters: ClassifierTrainingParameters

    @classmethod
    def fields_of(cls, job: FineTuningJob) -> dict:
        fields = super().fields_of(job)
        fields["hyperparameters"] = ClassifierTrainingParameters.model_validate(
            {k: v for k, v in job.hyperparameters.items() if k in ClassifierTrainingParameters.model_fields})
        return fields


class ClassifierDetailedJobOut(ClassifierJobOut):
    events: list[EventOut] = []
    checkpoints: list[CheckpointOut] = []
    classifier_targets: list[ClassifierTargetOut]

    @classmethod
    def of_detail(cls, detail: JobDetail) -> "ClassifierDetailedJobOut":
        return cls(**cls.fields_of(detail.job), events=_events(detail),
                   checkpoints=[CheckpointOut.of(c) for c in detail.checkpoints],
                   classifier_targets=[ClassifierTargetOut(**t) for t in detail.job.classifier_targets or []])


def job_out(job: FineTuningJob) -> CompletionJobOut | ClassifierJobOut:
    return ClassifierJobOut.of(job) if job.job_type == "classifier" else CompletionJobOut.of(job)


def detailed_job_out(detail: JobDetail) -> CompletionDetailedJobOut | ClassifierDetailedJobOut:
    if detail.job.job_type == "classifier":
        return ClassifierDetailedJobOut.of_detail(detail)
    return CompletionDetailedJobOut.of_detail(detail)


class JobsOut(BaseModel):
    data: list[Annotated[ClassifierJobOut | CompletionJobOut, Field(discriminator="job_type")]] = []
    object: Literal["list"] = "list"
    total: int
