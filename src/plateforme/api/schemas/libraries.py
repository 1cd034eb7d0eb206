"""Libraries API shapes (Mistral's beta: Library, Document, ListLibrariesResponse,
ListDocumentsResponse, ProcessingStatus, Sharing, SharingRequest, SharingDelete, DocumentTextContent),
and the mappers from the capability's records to them."""

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from plateforme.libraries.service import LibraryPage, LibraryView
from plateforme.libraries.sharing import Share
from plateforme.storage.library_tables import LibraryDocument
from plateforme.tenancy.ids import as_utc

ProcessStatus = Literal["self_managed", "missing_content", "noop", "done", "todo", "in_progress", "error",
                        "waiting_for_capacity"]
AttributeValue = bool | int | float | str | list[str] | list[int] | list[float] | list[bool]


class CreateLibraryRequest(BaseModel):
    name: str
    description: str | None = None
    chunk_size: int | None = Field(None, ge=256, le=32768)
    owner_type: Literal["User", "Workspace"] | None = None


class UpdateLibraryRequest(BaseModel):
    name: str | None = None
    description: str | None = None


class UpdateDocumentRequest(BaseModel):
    name: str | None = None
    attributes: dict[str, AttributeValue] | None = None
    expires_at: datetime | None = None


class SharingRequest(BaseModel):
    org_id: str | None = None
    level: Literal["Viewer", "Editor"]
    share_with_uuid: str
    share_with_type: Literal["User", "Workspace", "Org"]


class SharingDelete(BaseModel):
    org_id: str | None = None
    share_with_uuid: str
    share_with_type: Literal["User", "Workspace", "Org"]


class Library(BaseModel):
    id: str
    name: str
    created_at: datetime
    updated_at: datetime
    owner_id: str | None
    owner_type: str
    total_size: int
    nb_documents: int
    chunk_size: int | None
    emoji: str | None = None
    description: str | None = None
    generated_description: str | None = None
    explicit_user_members_count: int | None = None
    explicit_workspace_members_count: int | None = None
    org_sharing_role: str | None = None
    generated_name: str | None = None


class PaginationInfo(BaseModel):
    total_items: int
    total_pages: int
    current_page: int
    page_size: int
    has_more: bool


class ListLibrariesResponse(BaseModel):
    pagination: PaginationInfo | None = None
    data: list[Library]
    next_page_token: str | None = None


class Document(BaseModel):
    id: str
    library_id: str
    hash: str | None
    mime_type: str | None
    extension: str | None
    size: int | None
    name: str
    summary: str | None = None
    created_at: datetime
    last_processed_at: datetime | None = None
    number_of_pages: int | None = None
    process_status: ProcessStatus
    # plateforme's own: why the document is in `error` (None otherwise).
    process_error: str | None = None
    uploaded_by_id: str | None
    uploaded_by_type: str
    tokens_processing_main_content: int | None = None
    tokens_processing_summary: int | None = None
    url: str | None = None
    attributes: dict | None = None
    expires_at: datetime | None = None
    processing_status: str
    tokens_processing_total: int


class ListDocumentsResponse(BaseModel):
    pagination: PaginationInfo
    data: list[Document]


class ProcessingStatus(BaseModel):
    document_id: str
    process_status: ProcessStatus
    processing_status: str
    process_error: str | None = None  # plateforme's own, as in Document


class DocumentTextContent(BaseModel):
    text: str


class Sharing(BaseModel):
    library_id: str
    user_id: str | None = None
    org_id: str
    role: str
    share_with_type: str
    share_with_uuid: str | None


class ListSharingResponse(BaseModel):
    data: list[Sharing]


def pagination(total: int, page: int, page_size: int) -> PaginationInfo:
    pages = -(-total // page_size)
    return PaginationInfo(total_items=total, total_pages=pages, current_page=page, page_size=page_size,
                          has_more=(page + 1) * page_size < total)


def library_response(view: LibraryView) -> Library:
    lib = view.library
    return Library(id=lib.id, name=lib.name, created_at=as_utc(lib.created_at), updated_at=as_utc(lib.updated_at),
                   owner_id=lib.owner_id, owner_type=lib.owner_type, total_size=view.total_size,
                   nb_documents=view.nb_documents, chunk_size=lib.chunk_size, description=lib.description)


def libraries_response(found: LibraryPage, page_size: int) -> ListLibrariesResponse:
    paging = pagination(found.total, found.page, page_size) if found.total is not None else None
    return ListLibrariesResponse(pagination=paging, data=[library_response(v) for v in found.views],
                                 next_page_token=found.next_page_token)


def document_response(doc: LibraryDocument) -> Document:
    return Document(id=doc.id, library_id=doc.library_id, hash=doc.hash, mime_type=doc.mime_type,
                    extension=doc.extension, size=doc.size, name=doc.name, summary=doc.summary,
                    created_at=as_utc(doc.created_at), last_processed_at=as_utc(doc.last_processed_at),
                    number_of_pages=doc.number_of_pages, process_status=doc.process_status,
                    process_error=doc.process_error, uploaded_by_id=doc.uploaded_by_id,
                    uploaded_by_type=doc.uploaded_by_type, attributes=doc.attributes,
                    expires_at=as_utc(doc.expires_at), processing_status=doc.process_status,
                    tokens_processing_total=doc.tokens_processing_total or 0)


def documents_response(docs: list[LibraryDocument], total: int, page: int, page_size: int) -> ListDocumentsResponse:
    return ListDocumentsResponse(pagination=pagination(total, page, page_size),
                                 data=[document_response(d) for d in docs])


def status_response(doc: LibraryDocument) -> ProcessingStatus:
    return ProcessingStatus(document_id=doc.id, process_status=doc.process_status,
                            processing_status=doc.process_status, process_error=doc.process_error)


def sharing_response(share: Share, org_id: str) -> Sharing:
    return Sharing(library_id=share.library_id, org_id=org_id, role=share.role,
                   share_with_type=share.share_with_type, share_with_uuid=share.share_with_uuid,
                   user_id=share.share_with_uuid if share.share_with_type == "User" else None)
