"""The ingestion of one document: parse and chunk (worker process), keep its text, embed its chunks,
index them. The outcome is the document's final status and fields: `done`, `missing_content` (no
text at all) or `error` with the reason, which names the cause and what to do about it.
"""

import asyncio
import logging
from dataclasses import dataclass, field

import numpy as np
from sqlalchemy.exc import IntegrityError

from plateforme.engines.errors import EngineUnavailable
from plateforme.libraries.documents import DONE, ERROR, MISSING_CONTENT, text_blob_key
from plateforme.libraries.parser_pool import ParserCrashed, ParserPool
from plateforme.storage.blobs import BlobNotFound, BlobStore
from plateforme.storage.library_tables import Library, LibraryDocument
from plateforme.tenancy.ids import utcnow

log = logging.getLogger("plateforme.libraries")
EMBED_BATCH = 32
DEFAULT_CHUNK_CHARS = 1200
UNAVAILABLE_RETRIES = 12


@dataclass
class Outcome:
    status: str
    fields: dict = field(default_factory=dict)

    @classmethod
    def error(cls, reason: str) -> "Outcome":
        return cls(ERROR, {"process_error": reason, "last_processed_at": utcnow()})


@dataclass(frozen=True)
class IngestionLimits:
    max_document_bytes: int
    max_pages: int
    ocr: object  # plateforme.ocr.config.OCRConfig


class DocumentIngestion:
    def __init__(self, blobs: BlobStore, embeddings, index, parser: ParserPool, limits: IngestionLimits):
        self.blobs, self.embeddings, self.index, self.parser, self.limits = blobs, embeddings, index, parser, limits

    async def run(self, doc: LibraryDocument, library: Library) -> Outcome:
        """Ingest `doc`; every failure is an Outcome in `error`, never an exception (but cancellation)."""
        try:
            return await self._run(doc, library)
        except asyncio.CancelledError:
            raise
        except IntegrityError:  # deleted while it was being ingested: its chunks have nothing to refer to
            log.info("document %s was deleted during its ingestion", doc.id)
            return Outcome.error("the document was deleted during its ingestion")
        except Exception as exc:
            log.exception("ingestion of document %s failed", doc.id)
            return Outcome.error(f"internal error while ingesting the document ({type(exc).__name__}: {exc}); "
                                 "see the server log, then reprocess it")

    async def _run(self, doc: LibraryDocument, library: Library) -> Outcome:
        limit = self.limits.max_document_bytes
        if doc.size > limit:
            return Outcome.error(f"the document is larger than {limit} bytes ({doc.size} bytes; "
                                 "PLATEFORME_LIBRARY_MAX_DOCUMENT_BYTES): split it, or raise the limit")
        try:
            data = await asyncio.to_thread(lambda: b"".join(self.blobs.iter_bytes(doc.blob_key)))
        except BlobNotFound:
            return Outcome.error("the uploaded file is missing from the blob store; upload it again")
        parsed = await self._parse(doc, library, data)
        if isinstance(parsed, Outcome):
            return parsed
        parsed, chunks = parsed
        text = parsed.text_content
        key = text_blob_key(doc)
        await asyncio.to_thread(self.blobs.put, key, [text.encode("utf-8")])
        fields = {"text_blob_key": key, "page_offsets": parsed.page_offsets, "number_of_pages": len(parsed.pages),
                  "ocr_pages": [p.number for p in parsed.pages if p.ocr] or None, "process_error": None}
        if not text.strip() or not chunks:
            await asyncio.to_thread(self.index.delete_document, doc.id)
            return Outcome(MISSING_CONTENT, {**fields, "last_processed_at": utcnow(), "tokens_processing_total": 0})
        embedded = await self._embed(library, [c.embedded_text for c in chunks])
        if isinstance(embedded, Outcome):
            return embedded
        vectors, tokens = embedded
        await asyncio.to_thread(self.index.write_document, doc.id, library.id, chunks, vectors)
        return Outcome(DONE, {**fields, "last_processed_at": utcnow(), "tokens_processing_total": tokens})

    async def _parse(self, doc: LibraryDocument, library: Library, data: bytes):
        from plateforme.libraries.parsing import DocumentRejected

        try:
            return await self.parser.run(data, doc.name, doc.mime_type, self.limits.ocr, self.limits.max_pages,
                                         library.chunk_size or DEFAULT_CHUNK_CHARS)
        except DocumentRejected as exc:
            return Outcome.error(str(exc))
        except ParserCrashed as exc:
            return Outcome.error(str(exc))
        except Exception as exc:  # a parser bug or an unexpected file: this document only
            log.warning("parsing document %s failed: %r", doc.id, exc)
            return Outcome.error(f"the document could not be read ({type(exc).__name__}: {exc}); check that "
                                 "it opens, then reprocess it or upload it in another format")

    async def _embed(self, library: Library, texts: list[str]):
        from plateforme.embeddings.service import EmbeddingInputTooLong, EmbeddingModelNotFound

        vectors, tokens = [], 0
        try:
            for start in range(0, len(texts), EMBED_BATCH):
                embedded = await self._embed_batch(library.embedding_model, texts[start:start + EMBED_BATCH])
                vectors.append(np.asarray(embedded.vectors, dtype=np.float32))
                tokens += embedded.prompt_tokens
        except EmbeddingModelNotFound:
            return Outcome.error(f"the library's embedding model {library.embedding_model!r} is not served any "
                                 "more: serve it again (models config), then reprocess the document")
        except EmbeddingInputTooLong as exc:
            return Outcome.error(f"a chunk is longer than the embedding model's window ({exc}); create the "
                                 "library with a smaller chunk_size")
        except EngineUnavailable as exc:
            return Outcome.error(f"the embedding model {library.embedding_model!r} stayed unavailable ({exc}); "
                                 "reprocess the document once it is up")
        return np.vstack(vectors), tokens

    async def _embed_batch(self, model: str, texts: list[str]):
        """One batch; a model that is starting or busy (503) is waited for, a few times."""
        for attempt in range(UNAVAILABLE_RETRIES):
            try:
                return await self.embeddings.embed(model, texts, input_type="document")
            except EngineUnavailable as exc:
                if attempt == UNAVAILABLE_RETRIES - 1:
                    raise
                await asyncio.sleep(min(max(exc.retry_after_s, 1), 10))
