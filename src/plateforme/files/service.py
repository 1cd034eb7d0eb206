"""Files of a workspace: upload (atomic), list with filters and pages, read, delete, signed links."""

import hashlib
import mimetypes
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import func, or_, select

from plateforme.files.names import sanitize_filename
from plateforme.storage.blobs import BlobStore
from plateforme.storage.database import Database
from plateforme.storage.tables import StoredFile
from plateforme.tenancy.ids import utcnow
from plateforme.tenancy.principal import Principal

# Every `purpose` of Mistral's current spec (FilePurpose, and `audio`, which FileSchema documents:
# "Audio/Transcription") and of the mistralai SDK (`agentic_safety`), with the `sample_type` an
# upload of it gets: the spec's SampleType has batch_request for batch input and instruct for
# the rest (its other values, pretrain and batch_result/batch_error, are not uploads of these).
PURPOSES = ("fine-tune", "batch", "ocr", "audio", "agentic_safety")
SAMPLE_TYPES = {"fine-tune": "instruct", "batch": "batch_request", "ocr": "instruct", "audio": "instruct",
                "agentic_safety": "instruct"}


class FileNotFound(LookupError):
    pass


class FileTooLarge(ValueError):
    pass


@dataclass
class FileFilters:
    purpose: str | None = None
    sample_types: list[str] | None = None
    sources: list[str] | None = None
    mimetypes: list[str] | None = None
    search: str | None = None


class _Counted:
    """Pass chunks through while hashing, counting bytes and lines, and enforcing a size limit."""

    def __init__(self, chunks: Iterable[bytes], limit: int):
        self.chunks, self.limit = chunks, limit
        self.size = self.lines = 0
        self.last = b""
        self.sha = hashlib.sha256()

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self.chunks:
            self.size += len(chunk)
            if self.size > self.limit:
                raise FileTooLarge(f"file is larger than the {self.limit} bytes this server accepts")
            self.sha.update(chunk)
            self.lines += chunk.count(b"\n")
            if chunk:
                self.last = chunk[-1:]
            yield chunk

    @property
    def num_lines(self) -> int:
        return self.lines + (1 if self.last not in (b"", b"\n") else 0)


class FileService:
    def __init__(self, db: Database, blobs: BlobStore, max_bytes: int):
        self.db, self.blobs, self.max_bytes = db, blobs, max_bytes

    def upload(self, who: Principal, filename: str | None, purpose: str, chunks: Iterable[bytes],
               mimetype: str | None = None, expiry_hours: int | None = None,
               visibility: str = "workspace") -> StoredFile:
        file_id = str(uuid.uuid4())
        key = f"{who.workspace_id}/{file_id}"
        counted = _Counted(chunks, self.max_bytes)
        self.blobs.put(key, counted)  # atomic: the row below is only written once the bytes are in place
        name = sanitize_filename(filename)
        now = utcnow()
        record = StoredFile(
            id=file_id, workspace_id=who.workspace_id, user_id=who.user_id, visibility=visibility,
            filename=name, purpose=purpose, bytes=counted.size, num_lines=counted.num_lines,
            mimetype=(mimetype if mimetype and mimetype != "application/octet-stream" else None)
            or mimetypes.guess_type(name)[0] or ("application/jsonl" if name.endswith(".jsonl") else None),
            sample_type=SAMPLE_TYPES[purpose], source="upload", signature=counted.sha.hexdigest(), blob_key=key,
            created_at=now, expires_at=now + timedelta(hours=expiry_hours) if expiry_hours else None)
        try:
            with self.db.session() as s:
                s.add(record)
                s.commit()
        except BaseException:
            self.blobs.delete(key)
            raise
        return record

    @staticmethod
    def _unexpired():
        return or_(StoredFile.expires_at.is_(None), StoredFile.expires_at > utcnow())

    def _visible(self, who: Principal):
        clause = StoredFile.workspace_id == who.workspace_id
        if not who.is_admin:
            clause = clause & or_(StoredFile.visibility == "workspace", StoredFile.user_id == who.user_id)
        return clause & self._unexpired()

    def list(self, who: Principal, page: int, page_size: int, filters: FileFilters) -> tuple[list[StoredFile], int]:
        where = self._visible(who)
        if filters.purpose:
            where &= StoredFile.purpose == filters.purpose
        if filters.sample_types:
            where &= StoredFile.sample_type.in_(filters.sample_types)
        if filters.sources:
            where &= StoredFile.source.in_(filters.sources)
        if filters.mimetypes:
            where &= StoredFile.mimetype.in_(filters.mimetypes)
        if filters.search:
            pattern = "%" + filters.search.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            where &= StoredFile.filename.ilike(pattern, escape="\\")
        with self.db.session() as s:
            total = s.scalar(select(func.count()).select_from(StoredFile).where(where))
            rows = s.scalars(select(StoredFile).where(where)
                             .order_by(StoredFile.created_at.desc(), StoredFile.id)
                             .offset(page * page_size).limit(page_size))
            return list(rows), total

    def get(self, who: Principal, file_id: str) -> StoredFile:
        with self.db.session() as s:
            record = s.scalar(select(StoredFile).where(StoredFile.id == file_id, self._visible(who)))
        if record is None:
            raise FileNotFound(f"No file with id {file_id!r} in this workspace.")
        return record

    def get_by_id(self, file_id: str) -> StoredFile:
        """For signed links, which carry their own authorisation: a deleted or expired file is gone
        for them too, whatever the link's own expiry."""
        with self.db.session() as s:
            record = s.scalar(select(StoredFile).where(StoredFile.id == file_id, self._unexpired()))
        if record is None:
            raise FileNotFound(f"No file with id {file_id!r}.")
        return record

    def content(self, record: StoredFile) -> Iterator[bytes]:
        return self.blobs.iter_bytes(record.blob_key)

    def delete(self, who: Principal, file_id: str) -> StoredFile:
        record = self.get(who, file_id)
        with self.db.session() as s:
            s.delete(s.get(StoredFile, record.id))
            s.commit()
        self.blobs.delete(record.blob_key)  # after the row: a crash here leaves an invisible orphan only
        return record
