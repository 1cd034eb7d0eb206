"""The Libraries API's documents (Mistral's beta): /v1/libraries/{library_id}/documents..., and the
signed links to a document's file and extracted text (the signature is the credential)."""

from typing import Annotated

from fastapi import APIRouter, File, Query, Request, Response, UploadFile
from fastapi.responses import StreamingResponse

from plateforme.api.errors import APIError
from plateforme.api.routes.libraries import audit, call, check_ids, parts
from plateforme.api.schemas.libraries import (Document, DocumentTextContent, ListDocumentsResponse,
                                              ProcessingStatus, UpdateDocumentRequest, document_response,
                                              documents_response, status_response)
from plateforme.files.names import content_disposition
from plateforme.libraries.document_links import LINK_HOURS, document_scope
from plateforme.libraries.documents import DocumentListing

router = APIRouter()
public_router = APIRouter()
_DOCUMENT = "/v1/libraries/{library_id}/documents/{document_id}"


@router.get("/v1/libraries/{library_id}/documents", response_model=ListDocumentsResponse)
async def list_documents(request: Request, library_id: str, search: str | None = None,
                         page_size: Annotated[int, Query(ge=1, le=100)] = 100,
                         page: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
                         filters_attributes: str | None = None, sort_by: str = "created_at",
                         sort_order: str = "desc") -> ListDocumentsResponse:
    library_id, _ = check_ids(library_id)
    listing = DocumentListing(sort_by, sort_order, search, filters_attributes)
    docs, total = await call(parts(request).documents.list, request.state.principal, library_id, page, page_size,
                             listing)
    return documents_response(docs, total, page, page_size)


@router.post("/v1/libraries/{library_id}/documents", response_model=Document, status_code=201)
async def upload_document(request: Request, response: Response, library_id: str,
                          file: Annotated[UploadFile, File()]) -> Document:
    library_id, _ = check_ids(library_id)

    def chunks():
        while chunk := file.file.read(1 << 20):
            yield chunk

    doc, created = await call(parts(request).documents.upload, request.state.principal, library_id, file.filename,
                              file.content_type, chunks())
    if created:
        await audit(request, "document.upload", "library_document", doc.id)
    else:
        response.status_code = 200  # the library already has these bytes: that document
    return document_response(doc)


@router.get(_DOCUMENT, response_model=Document)
async def get_document(request: Request, library_id: str, document_id: str) -> Document:
    ids = check_ids(library_id, document_id)
    return document_response(await call(parts(request).documents.get, request.state.principal, *ids))


@router.patch(_DOCUMENT, response_model=Document)
@router.put(_DOCUMENT, response_model=Document)  # deprecated by Mistral: the same
async def update_document(request: Request, library_id: str, document_id: str,
                          body: UpdateDocumentRequest) -> Document:
    ids = check_ids(library_id, document_id)
    fields = body.model_dump(include=body.model_fields_set)
    doc = await call(parts(request).documents.update, request.state.principal, *ids, fields)
    return document_response(doc)


@router.delete(_DOCUMENT, status_code=204)
async def delete_document(request: Request, library_id: str, document_id: str) -> Response:
    ids = check_ids(library_id, document_id)
    await call(parts(request).documents.delete, request.state.principal, *ids)
    await audit(request, "document.delete", "library_document", ids[1])
    return Response(status_code=204)


@router.get(_DOCUMENT + "/text_content", response_model=DocumentTextContent)
async def document_text(request: Request, library_id: str, document_id: str, page_start: int | None = None,
                        page_end: int | None = None) -> DocumentTextContent:
    ids = check_ids(library_id, document_id)
    text = await call(parts(request).documents.text, request.state.principal, *ids, page_start, page_end)
    return DocumentTextContent(text=text)


@router.get(_DOCUMENT + "/status", response_model=ProcessingStatus)
async def document_status(request: Request, library_id: str, document_id: str) -> ProcessingStatus:
    ids = check_ids(library_id, document_id)
    return status_response(await call(parts(request).documents.get, request.state.principal, *ids))


@router.post(_DOCUMENT + "/reprocess", status_code=204)
async def reprocess_document(request: Request, library_id: str, document_id: str) -> Response:
    ids = check_ids(library_id, document_id)
    await call(parts(request).documents.reprocess, request.state.principal, *ids)
    await audit(request, "document.reprocess", "library_document", ids[1])
    return Response(status_code=204)


async def _signed_link(request: Request, library_id: str, document_id: str, what: str, route: str) -> str:
    ids = check_ids(library_id, document_id)
    doc = await call(parts(request).documents.get, request.state.principal, *ids)
    if what == "text":
        await call(parts(request).documents.read_text, doc)  # 409 while there is no text to link to
    expires, signature = parts(request).url_signer.sign(document_scope(what, doc.id), LINK_HOURS)
    await audit(request, f"document.sign_{what}_url", "library_document", doc.id)
    return str(request.url_for(route, document_id=doc.id).include_query_params(expires=expires, signature=signature))


@router.get(_DOCUMENT + "/signed-url", response_model=str)
async def document_signed_url(request: Request, library_id: str, document_id: str) -> str:
    return await _signed_link(request, library_id, document_id, "file", "signed_document")


@router.get(_DOCUMENT + "/extracted-text-signed-url", response_model=str)
async def document_text_signed_url(request: Request, library_id: str, document_id: str) -> str:
    return await _signed_link(request, library_id, document_id, "text", "signed_document_text")


async def _linked(request: Request, document_id: str, what: str, expires: int, signature: str):
    _, document_id = check_ids("00000000-0000-0000-0000-000000000000", document_id)
    if not parts(request).url_signer.verify(document_scope(what, document_id), expires, signature):
        raise APIError(403, "This link is invalid or has expired: ask for a new one (GET "
                       "/v1/libraries/{library_id}/documents/{document_id}/signed-url).", type="forbidden")
    doc, workspace_id = await call(parts(request).documents.linked, document_id)
    await request.app.state.audit.arecord(None, f"document.read_signed_{what}", "library_document", doc.id,
                                          request.client.host if request.client else None,
                                          workspace_id=workspace_id)
    return doc


@public_router.get("/v1/library-documents/{document_id}/signed-content", name="signed_document")
async def signed_document(request: Request, document_id: str, expires: int, signature: str) -> StreamingResponse:
    doc = await _linked(request, document_id, "file", expires, signature)
    return StreamingResponse(parts(request).documents.content(doc), media_type=doc.mime_type or
                             "application/octet-stream",
                             headers={"Content-Disposition": content_disposition(doc.name),
                                      "Content-Length": str(doc.size)})


@public_router.get("/v1/library-documents/{document_id}/signed-text", name="signed_document_text")
async def signed_document_text(request: Request, document_id: str, expires: int, signature: str) -> Response:
    doc = await _linked(request, document_id, "text", expires, signature)
    text = await call(parts(request).documents.read_text, doc)
    return Response(text.encode("utf-8"), media_type="text/plain; charset=utf-8")

