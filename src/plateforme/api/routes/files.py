"""The Files API: /v1/files (upload, list, retrieve, delete, content, signed URL)."""

import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, File, Form, Query, Request, UploadFile
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from plateforme.api.errors import APIError
from plateforme.api.schemas.files import DeletedFile, FileList, FileObject, Purpose, SignedUrl
from plateforme.files.names import content_disposition
from plateforme.files.service import FileFilters, FileNotFound, FileService, FileTooLarge
from plateforme.storage.tables import StoredFile
from plateforme.tenancy.principal import Principal

router = APIRouter()
public_router = APIRouter()  # signed links: the signature is the credential


def _files(request: Request) -> FileService:
    return request.app.state.files


def _principal(request: Request) -> Principal:
    return request.state.principal


def _check_id(file_id: str) -> str:
    try:
        return str(uuid.UUID(file_id))
    except ValueError:
        raise APIError(404, f"No file with id {file_id!r}: file ids are UUIDs.", type="not_found",
                       param="file_id") from None


async def _audit(request: Request, action: str, file_id: str) -> None:
    await request.app.state.audit.arecord(request.state.principal, action, "file", file_id,
                                          request.client.host if request.client else None)


def _download(files: FileService, record: StoredFile) -> StreamingResponse:
    return StreamingResponse(files.content(record), media_type="application/octet-stream",
                             headers={"Content-Disposition": content_disposition(record.filename),
                                      "Content-Length": str(record.bytes)})


@router.post("/v1/files", response_model=FileObject)
async def upload_file(request: Request, file: Annotated[UploadFile, File()],
                      purpose: Annotated[Purpose, Form()] = "fine-tune",
                      expiry: Annotated[int | None, Form(ge=1, le=24 * 365)] = None,
                      visibility: Annotated[Literal["workspace", "user"], Form()] = "workspace") -> FileObject:
    def chunks():
        while chunk := file.file.read(1 << 20):
            yield chunk

    try:
        record = await run_in_threadpool(_files(request).upload, _principal(request), file.filename, purpose,
                                         chunks(), file.content_type, expiry, visibility)
    except FileTooLarge as exc:
        raise APIError(413, str(exc), param="file") from exc
    await _audit(request, "file.upload", record.id)
    return FileObject.from_record(record)


@router.get("/v1/files", response_model=FileList)
async def list_files(request: Request, page: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
                     page_size: Annotated[int, Query(ge=1, le=1000)] = 100, include_total: bool = True,
                     sample_type: Annotated[list[str] | None, Query()] = None,
                     source: Annotated[list[str] | None, Query()] = None, search: str | None = None,
                     purpose: Purpose | None = None,
                     mimetypes: Annotated[list[str] | None, Query()] = None) -> FileList:
    filters = FileFilters(purpose, sample_type, source, mimetypes, search)
    rows, total = await run_in_threadpool(_files(request).list, _principal(request), page, page_size, filters)
    return FileList(data=[FileObject.from_record(r) for r in rows], total=total if include_total else None)


async def _get(request: Request, file_id: str) -> StoredFile:
    try:
        return await run_in_threadpool(_files(request).get, _principal(request), _check_id(file_id))
    except FileNotFound as exc:
        raise APIError(404, str(exc), type="not_found", param="file_id") from exc


@router.get("/v1/files/{file_id}", response_model=FileObject)
async def retrieve_file(request: Request, file_id: str) -> FileObject:
    return FileObject.from_record(await _get(request, file_id))


@router.delete("/v1/files/{file_id}", response_model=DeletedFile)
async def delete_file(request: Request, file_id: str) -> DeletedFile:
    record = await _get(request, file_id)
    await run_in_threadpool(_files(request).delete, _principal(request), record.id)
    await _audit(request, "file.delete", record.id)
    return DeletedFile(id=record.id)


@router.get("/v1/files/{file_id}/content")
async def download_file(request: Request, file_id: str) -> StreamingResponse:
    record = await _get(request, file_id)
    await _audit(request, "file.read", record.id)
    return _download(_files(request), record)


@router.get("/v1/files/{file_id}/url", response_model=SignedUrl)
async def signed_url(request: Request, file_id: str, expiry: Annotated[int, Query(ge=1, le=168)] = 24) -> SignedUrl:
    record = await _get(request, file_id)
    expires, signature = request.app.state.url_signer.sign(record.id, expiry)
    await _audit(request, "file.sign_url", record.id)
    url = request.url_for("signed_download", file_id=record.id).include_query_params(
        expires=expires, signature=signature)
    return SignedUrl(url=str(url))


@public_router.get("/v1/files/{file_id}/signed-content", name="signed_download")
async def signed_download(request: Request, file_id: str, expires: int, signature: str) -> StreamingResponse:
    file_id = _check_id(file_id)
    if not request.app.state.url_signer.verify(file_id, expires, signature):
        raise APIError(403, "This download link is invalid or has expired: ask for a new one "
                       "(GET /v1/files/{id}/url).", type="forbidden")
    try:
        record = await run_in_threadpool(_files(request).get_by_id, file_id)
    except FileNotFound as exc:
        raise APIError(404, str(exc), type="not_found") from exc
    await request.app.state.audit.arecord(None, "file.read_signed", "file", record.id,
                                          request.client.host if request.client else None,
                                          workspace_id=record.workspace_id)
    return _download(_files(request), record)

