"""Fine-tuning jobs: /v1/fine_tuning/jobs (create or dry run, list, get, cancel, start)."""

import uuid
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request

from plateforme.api.errors import APIError
from plateforme.api.schemas.fine_tuning import (ClassifierDetailedJobOut, ClassifierJobOut, CompletionDetailedJobOut,
                                                CompletionJobOut, JobIn, JobsOut, LegacyJobMetadataOut, Status,
                                                detailed_job_out, job_out)
from plateforme.fine_tuning.job_store import JobFilters
from plateforme.fine_tuning.service import FineTuningService

router = APIRouter()


def _service(request: Request) -> FineTuningService:
    return request.app.state.fine_tuning


def _job_id(job_id: str) -> str:
    try:
        return str(uuid.UUID(job_id))
    except ValueError:
        raise APIError(404, f"No fine-tuning job with id {job_id!r}: job ids are UUIDs.", type="not_found",
                       param="job_id") from None


async def _audit(request: Request, action: str, job_id: str) -> None:
    await request.app.state.audit.arecord(request.state.principal, action, "fine_tuning_job", job_id,
                                          request.client.host if request.client else None)


DetailedJob = ClassifierDetailedJobOut | CompletionDetailedJobOut


@router.post("/v1/fine_tuning/jobs", response_model=ClassifierJobOut | CompletionJobOut | LegacyJobMetadataOut)
async def create_job(request: Request, body: JobIn, dry_run: bool | None = None):
    data = body.model_dump(mode="json")
    if dry_run:
        return LegacyJobMetadataOut(**await _service(request).dry_run(request.state.principal, data))
    job = await _service(request).create(request.state.principal, data)
    await _audit(request, "fine_tuning.job.create", job.id)
    return job_out(job)


@router.get("/v1/fine_tuning/jobs", response_model=JobsOut)
async def list_jobs(request: Request, page: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
                    page_size: Annotated[int, Query(ge=1, le=1000)] = 100, model: str | None = None,
                    created_after: datetime | None = None, created_before: datetime | None = None,
                    created_by_me: bool = False, status: Status | None = None,
                    wandb_project: str | None = None, wandb_name: str | None = None,
                    suffix: str | None = None) -> JobsOut:
    who = request.state.principal
    if wandb_project or wandb_name:  # no job of this server has a W&B integration
        return JobsOut(data=[], total=0)
    filters = JobFilters(model=model, created_after=created_after, created_before=created_before,
                         created_by=who.user_id if created_by_me else None, status=status, suffix=suffix)
    jobs, total = await _service(request).list(who, page, page_size, filters)
    return JobsOut(data=[job_out(j) for j in jobs], total=total)


@router.get("/v1/fine_tuning/jobs/{job_id}", response_model=DetailedJob)
async def get_job(request: Request, job_id: str) -> DetailedJob:
    detail = await _service(request).get(request.state.principal, _job_id(job_id))
    return detailed_job_out(detail)


@router.post("/v1/fine_tuning/jobs/{job_id}/cancel", response_model=DetailedJob)
async def cancel_job(request: Request, job_id: str) -> DetailedJob:
    detail = await _service(request).cancel(request.state.principal, _job_id(job_id))
    await _audit(request, "fine_tuning.job.cancel", detail.job.id)
    return detailed_job_out(detail)


@router.post("/v1/fine_tuning/jobs/{job_id}/start", response_model=DetailedJob)
async def start_job(request: Request, job_id: str) -> DetailedJob:
    detail = await _service(request).start(request.state.principal, _job_id(job_id))
    await _audit(request, "fine_tuning.job.start", detail.job.id)
    return detailed_job_out(detail)
