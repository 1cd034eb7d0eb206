"""Tables of document libraries: libraries, their sharing, documents and the chunks they are cut into.

The retrieval indexes over the chunks (vectors, full text) are kept by `retrieval/` in structures
of their own, keyed by `document_chunks.id`, created per embedding dimension when first needed.
"""

from datetime import datetime

from sqlalchemy import JSON, BigInteger, DateTime, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from plateforme.storage.tables import Base

_BIGINT_ID = BigInteger().with_variant(Integer, "sqlite")  # INTEGER PRIMARY KEY is SQLite's rowid


class Library(Base):
    __tablename__ = "libraries"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)  # a UUID, as in Mistral's API
    # The workspace the library belongs to; owner_type "Workspace": owned by it (owner_id is the
    # workspace id), "User": private to one user of it (owner_id is the user id).
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"), index=True)
    owner_type: Mapped[str] = mapped_column(String(20))
    owner_id: Mapped[str | None] = mapped_column(String(40))
    name: Mapped[str] = mapped_column(String(300))
    description: Mapped[str | None] = mapped_column(Text)
    chunk_size: Mapped[int | None] = mapped_column(Integer)
    # The embedding model its chunks are embedded with (fixed at creation: vectors of two models
    # cannot be compared).
    embedding_model: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class LibraryShare(Base):
    __tablename__ = "library_shares"
    library_id: Mapped[str] = mapped_column(ForeignKey("libraries.id", ondelete="CASCADE"), primary_key=True)
    share_with_type: Mapped[str] = mapped_column(String(20), primary_key=True)  # User | Workspace | Org
    share_with_uuid: Mapped[str] = mapped_column(String(40), primary_key=True, index=True)
    role: Mapped[str] = mapped_column(String(20))  # Viewer | Editor
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class LibraryDocument(Base):
    __tablename__ = "library_documents"
    __table_args__ = (Index("ix_library_documents_status", "process_status", "lease_until"),)
    id: Mapped[str] = mapped_column(String(40), primary_key=True)  # a UUID
    library_id: Mapped[str] = mapped_column(ForeignKey("libraries.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(300))
    mime_type: Mapped[str | None] = mapped_column(String(200))
    extension: Mapped[str | None] = mapped_column(String(20))
    size: Mapped[int] = mapped_column(BigInteger)
    hash: Mapped[str] = mapped_column(String(64), index=True)  # sha256 of the uploaded bytes
    blob_key: Mapped[str] = mapped_column(String(300))  # the uploaded file in the blob store
    text_blob_key: Mapped[str | None] = mapped_column(String(300))  # the extracted text (text_content)
    # Character offset in the extracted text where each page starts ([0, ...], one per page).
    page_offsets: Mapped[list | None] = mapped_column(JSON)
    number_of_pages: Mapped[int | None] = mapped_column(Integer)
    ocr_pages: Mapped[list | None] = mapped_column(JSON)  # 1-based numbers of the pages read by OCR
    summary: Mapped[str | None] = mapped_column(Text)
    attributes: Mapped[dict | None] = mapped_column(JSON)
    uploaded_by_id: Mapped[str | None] = mapped_column(String(40))
    uploaded_by_type: Mapped[str] = mapped_column(String(20))  # User | Workspace (an API key)
    # Mistral's ProcessStatus: todo -> in_progress -> done | error (missing_content: no text at all).
    process_status: Mapped[str] = mapped_column(String(30))
    process_error: Mapped[str | None] = mapped_column(Text)  # why it is in `error`
    tokens_processing_total: Mapped[int] = mapped_column(BigInteger, default=0)
    attempts: Mapped[int] = mapped_column(Integer, default=0)  # ingestion runs started
    runner_id: Mapped[str | None] = mapped_column(String(64))
    lease_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    last_processed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class DocumentChunk(Base):
    __tablename__ = "document_chunks"
    id: Mapped[int] = mapped_column(_BIGINT_ID, primary_key=True, autoincrement=True)
    document_id: Mapped[str] = mapped_column(ForeignKey("library_documents.id", ondelete="CASCADE"), index=True)
    library_id: Mapped[str] = mapped_column(String(40), index=True)
    ordinal: Mapped[int] = mapped_column(Integer)  # position in the document
    page: Mapped[int] = mapped_column(Integer)  # 1-based page the chunk starts on
    start: Mapped[int] = mapped_column(Integer)  # offsets into the document's text_content:
    end: Mapped[int] = mapped_column(Integer)  # text_content[start:end] == text
    heading: Mapped[str | None] = mapped_column(Text)  # the section heading path it sits under
    text: Mapped[str] = mapped_column(Text)
