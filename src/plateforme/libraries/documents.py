"""Documents of a library: upload (bytes to the blob store, deduplicated by hash within the library),
list, read, update, delete (with their index entries and blobs), text content by pages, reprocess.

Every query carries the library's access predicate (libraries/access.py): the document of a library
the caller may not see is never read. Ingestion itself is the runner's (ingestion_runner.py).
"""

import hashlib
import json
import mimetypes
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, func, select, update

from plateforme.files.names import sanitize_filename
from plateforme.libraries import access
from plateforme.libraries.errors import DocumentNotFound, LibraryError
from plateforme.libraries.service import document_blob_keys, live_documents
from plateforme.storage.blobs import BlobStore
from plateforme.storage.database import Database
from plateforme.storage.json_match import json_equals
from plateforme.storage.library_tables import Library, LibraryDocument
from plateforme.tenancy.ids import as_utc, utcnow
from plateforme.tenancy.principal import Principal

SORTS = {"created_at": LibraryDocument.created_at, "name": LibraryDocument.name, "size": LibraryDocument.size,
         "last_processed_at": LibraryDocument.last_processed_at, "process_status": LibraryDocument.process_status}
# Mistral's ProcessStatus values (`todo`: queued for ingestion).
QUEUED, IN_PROGRESS, DONE, ERROR, MISSING_CONTENT = "todo", "in_progress", "done", "error", "missing_content"


@dataclass
class DocumentListing:
    sort_by: str = "created_at"
    sort_order: str = "desc"
    search: str | None = None
    attributes: str | None = None  # JSON object: documents whose attributes have these values


class _Hashed:
    """Pass chunks through while hashing and counting them, refusing more than `limit` bytes."""

    def __init__(self, chunks: Iterable[bytes], limit: int):
        self.chunks, self.limit, self.size, self.sha = chunks, limit, 0, hashlib.sha256()

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self.chunks:
            self.size += len(chunk)
            if self.size > self.limit:
                raise LibraryError(f"the file is larger than the {self.limit} bytes this server accepts "
                                   "(PLATEFORME_MAX_UPLOAD_BYTES)", 413, "file")
            self.sha.update(chunk)
            yield chunk


def _attribute_filters(raw: str) -> list:
    try:
        wanted = json.loads(raw)
    except ValueError:
        wanted = None
    if not isinstance(wanted, dict):
        raise LibraryError('filters_attributes must be a JSON object of attribute values, e.g. {"lang": "fr"}.',
                           422, "filters_attributes")
    clauses = []
    for key, value in wanted.items():
        clause = json_equals(LibraryDocument.attributes[key], value)
        if clause is not None:
            clauses.append(clause)
        else:
            raise LibraryError(f"filters_attributes[{key!r}]: only strings, numbers and booleans can be "
                               "matched.", 422, "filters_attributes")
    return clauses


def page_range(text: str, offsets: list[int] | None, page_start: int | None, page_end: int | None) -> str:
    """The text of pages page_start..page_end (1-based, inclusive; open ends: the first, the last page)."""
    if page_start is None and page_end is None:
        return text
    offsets = offsets or [0]
    pages = len(offsets)
    start, end = page_start or 1, page_end or pages
    if start < 1 or end < start:
        raise LibraryError(f"pages count from 1 and page_end must not be before page_start (got page_start="
                           f"{page_start}, page_end={page_end}).", 422, "page_start")
    if start > pages:
        raise LibraryError(f"page_start={start}: the document has {pages} page(s).", 422, "page_start")
    stop = offsets[end] if end < pages else len(text)
    return text[offsets[start - 1]:stop]


class DocumentService:
    def __init__(self, db: Database, blobs: BlobStore, index, max_upload_bytes: int, wake=lambda: None):
        self.db, self.blobs, self.index, self.max_upload_bytes = db, blobs, index, max_upload_bytes
        self.wake = wake  # tells the ingestion runner a document is waiting

    def _query(self, principal: Principal, library_id: str, at_least: str):
        return (select(LibraryDocument).join(Library, Library.id == LibraryDocument.library_id)
                .where(LibraryDocument.library_id == library_id, access.allowed(principal, at_least),
                       live_documents()))

    def get(self, principal: Principal, library_id: str, document_id: str,
            at_least: str = access.VIEWER) -> LibraryDocument:
        with self.db.session() as s:
            doc = s.scalar(self._query(principal, library_id, at_least).where(LibraryDocument.id == document_id))
            if doc is None:
                access.require(s, principal, library_id, at_least)  # 404 or 403 for the library itself
                raise DocumentNotFound(document_id)
        return doc

    def upload(self, principal: Principal, library_id: str, filename: str | None, content_type: str | None,
               chunks: Iterable[bytes]) -> tuple[LibraryDocument, bool]:
        """Store an uploaded document for ingestion; (the document, True) when new, (the library's
        document with the same bytes, False) when it already has one."""
        with self.db.session() as s:
            access.require(s, principal, library_id, access.EDITOR)
        document_id = str(uuid.uuid4())
        key = f"libraries/{library_id}/{document_id}"
        hashed = _Hashed(chunks, self.max_upload_bytes)
        self.blobs.put(key, hashed)
        digest = hashed.sha.hexdigest()
        with self.db.session() as s:
            same = s.scalar(self._query(principal, library_id, access.EDITOR).where(LibraryDocument.hash == digest)
                            .order_by(LibraryDocument.created_at).limit(1))
        if same is not None:
            self.blobs.delete(key)
            return same, False
        name = sanitize_filename(filename)
        stem, dot, ext = name.rpartition(".")
        mime = content_type if content_type and content_type != "application/octet-stream" else None
        doc = LibraryDocument(
            id=document_id, library_id=library_id, name=name, mime_type=mime or mimetypes.guess_type(name)[0],
            extension=ext.lower()[:20] if dot and stem else None, size=hashed.size, hash=digest, blob_key=key,
            uploaded_by_id=principal.user_id or principal.workspace_id,
            uploaded_by_type="User" if principal.user_id else "Workspace", process_status=QUEUED,
            tokens_processing_total=0, attempts=0, created_at=utcnow())
        try:
            with self.db.session() as s:
                s.add(doc)
                s.commit()
        except BaseException:
            self.blobs.delete(key)
            raise
        self.wake()
        return doc, True

    def list(self, principal: Principal, library_id: str, page: int, page_size: int,
             listing: DocumentListing) -> tuple[list[LibraryDocument], int]:
        column = SORTS.get(listing.sort_by)
        if column is None:
            raise LibraryError(f"sort_by must be one of {', '.join(SORTS)} (got {listing.sort_by!r}).", 422,
                               "sort_by")
        if listing.sort_order not in ("asc", "desc"):
            raise LibraryError(f"sort_order must be asc or desc (got {listing.sort_order!r}).", 422, "sort_order")
        query = self._query(principal, library_id, access.VIEWER)
        if listing.search:
            pattern = "%" + listing.search.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            query = query.where(LibraryDocument.name.ilike(pattern, escape="\\"))
        if listing.attributes:
            query = query.where(*_attribute_filters(listing.attributes))
        order = (column.asc(), LibraryDocument.id.asc()) if listing.sort_order == "asc" else (
            column.desc(), LibraryDocument.id.desc())
        with self.db.session() as s:
            access.require(s, principal, library_id, access.VIEWER)
            total = s.scalar(select(func.count()).select_from(query.subquery()))
            rows = s.scalars(query.order_by(*order).offset(page * page_size).limit(page_size)).all()
        return list(rows), total

    def update(self, principal: Principal, library_id: str, document_id: str, fields: dict) -> LibraryDocument:
        """Set `name`, `attributes` and/or `expires_at` (the keys of `fields`); needs Editor."""
        values = {}
        if fields.get("name") is not None:
            name = fields["name"].strip()
            if not name or len(name) > 300:
                raise LibraryError("name must have 1 to 300 characters.", 422, "name")
            values["name"] = name
        if "attributes" in fields:
            values["attributes"] = fields["attributes"]
        if "expires_at" in fields:
            expires_at: datetime | None = as_utc(fields["expires_at"])
            if expires_at is not None and expires_at <= utcnow():
                raise LibraryError("expires_at is in the past: to delete the document, DELETE it.", 422, "expires_at")
            values["expires_at"] = expires_at
        doc = self.get(principal, library_id, document_id, access.EDITOR)
        if values:
            with self.db.session() as s:
                s.execute(update(LibraryDocument).where(LibraryDocument.id == doc.id).values(**values))
                s.commit()
        return self.get(principal, library_id, document_id)

    def delete(self, principal: Principal, library_id: str, document_id: str) -> None:
        doc = self.get(principal, library_id, document_id, access.EDITOR)
        self.remove(doc)

    def remove(self, doc: LibraryDocument) -> None:
        """Delete a document (already authorised, or expired): index entries, row, then blobs."""
        self.index.delete_document(doc.id)
        with self.db.session() as s:
            s.execute(delete(LibraryDocument).where(LibraryDocument.id == doc.id))
            s.commit()
        for key in document_blob_keys(doc) + [text_blob_key(doc)]:
            self.blobs.delete(key)

    def reprocess(self, principal: Principal, library_id: str, document_id: str) -> None:
        """Queue the document for ingestion again (whatever a runner is doing with it: its result is dropped)."""
        doc = self.get(principal, library_id, document_id, access.EDITOR)
        with self.db.session() as s:
            s.execute(update(LibraryDocument).where(LibraryDocument.id == doc.id).values(
                process_status=QUEUED, process_error=None, attempts=0, runner_id=None, lease_until=None))
            s.commit()
        self.wake()

    def text(self, principal: Principal, library_id: str, document_id: str, page_start: int | None,
             page_end: int | None) -> str:
        doc = self.get(principal, library_id, document_id)
        return page_range(self.read_text(doc), doc.page_offsets, page_start, page_end)

    def read_text(self, doc: LibraryDocument) -> str:
        """The document's extracted text; LibraryError 409 while there is none yet (or it failed)."""
        if doc.process_status == MISSING_CONTENT:
            return ""
        if doc.text_blob_key is None or doc.process_status != DONE:
            reason = f": {doc.process_error}" if doc.process_error else ""
            raise LibraryError(f"The document's text is not extracted (process_status {doc.process_status}"
                               f"{reason}); wait until its status is done.", 409, "document_id")
        return b"".join(self.blobs.iter_bytes(doc.text_blob_key)).decode("utf-8")

    def content(self, doc: LibraryDocument) -> Iterator[bytes]:
        return self.blobs.iter_bytes(doc.blob_key)

    def linked(self, document_id: str) -> tuple[LibraryDocument, str]:
        """For signed links, which carry their own authorisation: the document and its workspace; a
        deleted or expired document is gone for them too."""
        with self.db.session() as s:
            row = s.execute(select(LibraryDocument, Library.workspace_id)
                            .join(Library, Library.id == LibraryDocument.library_id)
                            .where(LibraryDocument.id == document_id, live_documents())).first()
        if row is None:
            raise DocumentNotFound(document_id)
        return row[0], row[1]


def text_blob_key(doc: LibraryDocument) -> str:
    """Where the document's extracted text is kept (one place per document: reprocessing replaces it)."""
    return f"{doc.blob_key}.txt"
