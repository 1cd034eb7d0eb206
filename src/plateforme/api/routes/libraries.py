"""The Libraries API (Mistral's beta): /v1/libraries (create, list, get, update, delete) and /share."""

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Request
from starlette.concurrency import run_in_threadpool

from plateforme.api.errors import APIError
from plateforme.api.schemas.libraries import (CreateLibraryRequest, Library, ListLibrariesResponse,
                                              ListSharingResponse, Sharing, SharingDelete, SharingRequest,
                                              UpdateLibraryRequest, libraries_response, library_response,
                                              sharing_response)
from plateforme.libraries.assembly import Libraries
from plateforme.libraries.errors import DocumentNotFound, LibraryError, LibraryNotFound

router = APIRouter()
_KINDS = {400: "invalid_request_error", 403: "forbidden", 404: "not_found", 409: "conflict", 413: "too_large",
          422: "invalid_request_error"}


def parts(request: Request) -> Libraries:
    return request.app.state.libraries


def check_ids(library_id: str, document_id: str | None = None) -> tuple[str, str | None]:
    """Ids are UUIDs: any other string names no library or document (404, as an unknown one)."""
    try:
        library_id = str(uuid.UUID(library_id))
    except ValueError:
        raise as_api_error(LibraryNotFound(library_id)) from None
    if document_id is not None:
        try:
            document_id = str(uuid.UUID(document_id))
        except ValueError:
            raise as_api_error(DocumentNotFound(document_id)) from None
    return library_id, document_id


def as_api_error(exc: LibraryError) -> APIError:
    return APIError(exc.status, str(exc), type=_KINDS.get(exc.status, "invalid_request_error"), param=exc.param)


async def call(fn, *args):
    """Run a capability call off the event loop, its errors in Mistral's shape."""
    try:
        return await run_in_threadpool(fn, *args)
    except LibraryError as exc:
        raise as_api_error(exc) from exc


async def audit(request: Request, action: str, resource_type: str, resource_id: str) -> None:
    await request.app.state.audit.arecord(request.state.principal, action, resource_type, resource_id,
                                          request.client.host if request.client else None)


@router.get("/v1/libraries", response_model=ListLibrariesResponse)
async def list_libraries(request: Request, page_size: Annotated[int, Query(ge=1, le=100)] = 100,
                         page_token: str | None = None, page: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
                         search: str | None = None, filter_owned_by_me: bool | None = None) -> ListLibrariesResponse:
    found = await call(parts(request).libraries.list, request.state.principal, page_size, page_token, page, search,
                       bool(filter_owned_by_me))
    return libraries_response(found, page_size)


@router.post("/v1/libraries", response_model=Library, status_code=201)
async def create_library(request: Request, body: CreateLibraryRequest) -> Library:
    view = await call(parts(request).libraries.create, request.state.principal, body.name, body.description,
                      body.chunk_size, body.owner_type)
    await audit(request, "library.create", "library", view.library.id)
    return library_response(view)


@router.get("/v1/libraries/{library_id}", response_model=Library)
async def get_library(request: Request, library_id: str) -> Library:
    library_id, _ = check_ids(library_id)
    return library_response(await call(parts(request).libraries.view, request.state.principal, library_id))


@router.delete("/v1/libraries/{library_id}", response_model=Library)
async def delete_library(request: Request, library_id: str) -> Library:
    library_id, _ = check_ids(library_id)
    view = await call(parts(request).libraries.delete, request.state.principal, library_id)
    await audit(request, "library.delete", "library", library_id)
    return library_response(view)


@router.patch("/v1/libraries/{library_id}", response_model=Library)
@router.put("/v1/libraries/{library_id}", response_model=Library)  # deprecated by Mistral: the same
async def update_library(request: Request, library_id: str, body: UpdateLibraryRequest) -> Library:
    library_id, _ = check_ids(library_id)
    fields = body.model_dump(include=body.model_fields_set)
    view = await call(parts(request).libraries.update, request.state.principal, library_id, fields)
    await audit(request, "library.update", "library", library_id)
    return library_response(view)


@router.get("/v1/libraries/{library_id}/share", response_model=ListSharingResponse)
async def list_shares(request: Request, library_id: str) -> ListSharingResponse:
    library_id, _ = check_ids(library_id)
    sharing = parts(request).sharing
    shares = await call(sharing.list, request.state.principal, library_id)
    return ListSharingResponse(data=[sharing_response(s, sharing.org_id) for s in shares])


@router.put("/v1/libraries/{library_id}/share", response_model=Sharing)
async def share_library(request: Request, library_id: str, body: SharingRequest) -> Sharing:
    library_id, _ = check_ids(library_id)
    sharing = parts(request).sharing
    share = await call(sharing.put, request.state.principal, library_id, body.share_with_type,
                       body.share_with_uuid, body.level)
    await audit(request, "library.share", "library", library_id)
    return sharing_response(share, sharing.org_id)


@router.delete("/v1/libraries/{library_id}/share", response_model=Sharing)
async def unshare_library(request: Request, library_id: str, body: SharingDelete) -> Sharing:
    library_id, _ = check_ids(library_id)
    sharing = parts(request).sharing
    share = await call(sharing.delete, request.state.principal, library_id, body.share_with_type,
                       body.share_with_uuid)
    await audit(request, "library.unshare", "library", library_id)
    return sharing_response(share, sharing.org_id)
