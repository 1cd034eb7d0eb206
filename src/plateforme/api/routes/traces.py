"""Feedback on captured chat completions, and fine-tuning datasets exported from them."""

from typing import Annotated

from fastapi import APIRouter, Body, Request

from plateforme.api.bad_request_route import BadRequestRoute
from plateforme.api.errors import APIError
from plateforme.api.schemas.files import FileObject
from plateforme.api.schemas.traces import DatasetExportIn, FeedbackIn, FeedbackOut
from plateforme.traces.errors import TraceError
from plateforme.traces.service import TraceService

router = APIRouter(route_class=BadRequestRoute)


def _traces(request: Request) -> TraceService:
    return request.app.state.traces


def _error(exc: TraceError, param: str | None = None) -> APIError:
    return APIError(exc.status, str(exc), type="not_found" if exc.status == 404 else "invalid_request_error",
                    param=param)


@router.post("/v1/chat/completions/{completion_id}/feedback", response_model=FeedbackOut)
async def give_feedback(completion_id: str, body: FeedbackIn, request: Request) -> FeedbackOut:
    try:
        trace = await _traces(request).give_feedback(request.state.principal, completion_id, body.rating,
                                                     body.corrected_answer, body.comment)
    except TraceError as exc:
        raise _error(exc, "completion_id") from exc
    return FeedbackOut.of(trace)


@router.post("/v1/datasets/export", response_model=FileObject)
async def export_dataset(request: Request, body: Annotated[DatasetExportIn | None, Body()] = None) -> FileObject:
    body = body or DatasetExportIn()
    try:
        record, _ = await _traces(request).export(request.state.principal, body.since, tuple(body.include))
    except TraceError as exc:
        raise _error(exc) from exc
    await request.app.state.audit.arecord(request.state.principal, "dataset.export", "file", record.id,
                                          request.client.host if request.client else None)
    return FileObject.from_record(record)
