"""Tables of fine-tuning: jobs, their events and checkpoints, and the fine-tuned models they made."""

from datetime import datetime

from sqlalchemy import JSON, BigInteger, Boolean, DateTime, Float, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from plateforme.storage.tables import Base


class FineTuningJob(Base):
    __tablename__ = "fine_tuning_jobs"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)  # a UUID, as in Mistral's API
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"), index=True)
    created_by: Mapped[str | None] = mapped_column(String(40))  # user id of the caller
    model: Mapped[str] = mapped_column(String(200))  # the base model
    # "completion" (a LoRA adapter over a chat model) or "classifier" (a head over an embedding model).
    job_type: Mapped[str] = mapped_column(String(20), default="completion", server_default="completion")
    # A classifier job's targets: [{"name", "labels", "weight", "loss_function"}] (None: completion).
    classifier_targets: Mapped[list | None] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(30), index=True)
    auto_start: Mapped[bool] = mapped_column(Boolean)
    suffix: Mapped[str | None] = mapped_column(String(40))
    hyperparameters: Mapped[dict] = mapped_column(JSON)
    training_files: Mapped[list] = mapped_column(JSON)  # [{"file_id", "weight"}]
    validation_files: Mapped[list] = mapped_column(JSON)  # [file_id]
    invalid_sample_skip_percentage: Mapped[float] = mapped_column(Float)
    # The estimate of the validation step (tokens, steps, epochs, expected duration).
    job_metadata: Mapped[dict | None] = mapped_column(JSON)
    trained_tokens: Mapped[int | None] = mapped_column(BigInteger)
    fine_tuned_model: Mapped[str | None] = mapped_column(String(250))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    modified_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # The runner (one per gateway data dir) that claimed the job, and until when the claim holds
    # unless renewed: another runner takes an active job over only once its lease has expired.
    runner_id: Mapped[str | None] = mapped_column(String(64))
    lease_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class FineTuningEvent(Base):
    __tablename__ = "fine_tuning_events"
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
                                    autoincrement=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("fine_tuning_jobs.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(60))
    data: Mapped[dict | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class FineTuningCheckpoint(Base):
    __tablename__ = "fine_tuning_checkpoints"
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
                                    autoincrement=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("fine_tuning_jobs.id", ondelete="CASCADE"), index=True)
    step_number: Mapped[int] = mapped_column(Integer)
    train_loss: Mapped[float | None] = mapped_column(Float)
    valid_loss: Mapped[float | None] = mapped_column(Float)
    valid_mean_token_accuracy: Mapped[float | None] = mapped_column(Float)
    # A classifier job's metrics per target: {target: {"valid_loss", "accuracy", "macro_f1"}}.
    metrics: Mapped[dict | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class FineTunedModel(Base):
    __tablename__ = "fine_tuned_models"
    id: Mapped[str] = mapped_column(String(250), primary_key=True)  # ft:<base>:<suffix>:<job>
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"), index=True)
    job_id: Mapped[str] = mapped_column(String(40))
    root: Mapped[str] = mapped_column(String(200))  # the base model it adapts
    # "completion" (served by the chat model's llama.cpp host) or "classifier" (a head over `root`,
    # an embedding model, served by the gateway).
    model_type: Mapped[str] = mapped_column(String(20), default="completion", server_default="completion")
    classifier_targets: Mapped[list | None] = mapped_column(JSON)  # a classifier's targets, as the job's
    name: Mapped[str | None] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text)
    archived: Mapped[bool] = mapped_column(Boolean, default=False)
    # The model's file in the platform's data directory, relative to it (the same key in the blob
    # store): the LoRA adapter (GGUF) of a completion model, the head (.npz) of a classifier.
    adapter_path: Mapped[str] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
