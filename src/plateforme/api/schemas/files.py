"""Files API shapes (Mistral's FileSchema, ListFilesResponse, DeleteFileResponse, GetSignedUrlResponse)."""

from typing import Literal

from pydantic import BaseModel

from plateforme.storage.tables import StoredFile
from plateforme.tenancy.ids import as_utc


# Mistral's FilePurpose (files/service.py: PURPOSES).
Purpose = Literal["fine-tune", "batch", "ocr", "audio", "agentic_safety"]


class FileObject(BaseModel):
    id: str
    object: Literal["file"] = "file"
    bytes: int
    created_at: int
    filename: str
    purpose: Purpose
    sample_type: str
    num_lines: int | None = None
    mimetype: str | None = None
    source: str
    signature: str | None = None
    expires_at: int | None = None
    visibility: Literal["workspace", "user"] | None = None
    deleted: bool = False

    @classmethod
    def from_record(cls, f: StoredFile) -> "FileObject":
        return cls(id=f.id, bytes=f.bytes, created_at=int(as_utc(f.created_at).timestamp()), filename=f.filename,
                   purpose=f.purpose, sample_type=f.sample_type, num_lines=f.num_lines, mimetype=f.mimetype,
                   source=f.source, signature=f.signature, visibility=f.visibility,
                   expires_at=int(as_utc(f.expires_at).timestamp()) if f.expires_at else None)


class FileList(BaseModel):
    data: list[FileObject]
    object: Literal["list"] = "list"
    total: int | None = None


class DeletedFile(BaseModel):
    id: str
    object: Literal["file"] = "file"
    deleted: bool = True


class SignedUrl(BaseModel):
    url: str
