"""The chunk index: what ingestion writes a document's chunks through and what search reads.

One per Database; synchronous (callers in async code use asyncio.to_thread). Each back-end keeps
the `document_chunks` rows (storage/library_tables.py) together with its own structures keyed by
the chunk id: dense vectors (one table per embedding dimension, created when a dimension first
appears) and lexical entries, so that deleting a chunk row removes all of them.
"""

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from plateforme.storage.database import Database


@dataclass(frozen=True)
class Hit:
    chunk_id: int
    score: float  # higher is better: cosine similarity (dense), bm25 / ts_rank_cd (lexical), RRF (fused)


class ChunkLike(Protocol):
    """What the index needs of a chunk (libraries.chunking.Chunk has it)."""
    ordinal: int
    page: int
    start: int
    end: int
    heading: str | None
    text: str


class ChunkIndex(Protocol):
    def write_document(self, document_id: str, library_id: str, chunks: list[ChunkLike],
                       vectors: np.ndarray) -> None:
        """Replace whatever the document had (reprocess) in one transaction: its document_chunks
        rows, their vectors (row i of `vectors` is chunks[i]'s) and their lexical entries."""

    def delete_document(self, document_id: str) -> None: ...

    def delete_library(self, library_id: str) -> None: ...

    def dense(self, vector: np.ndarray, library_ids: list[str], k: int, filters: dict | None) -> list[Hit]:
        """The k chunks nearest to `vector` (cosine) among those of `library_ids` whose document
        is done and matches `filters`, best first."""

    def lexical(self, query: str, library_ids: list[str], k: int, filters: dict | None,
                fill: bool = True) -> list[Hit]:
        """The k chunks that best match the words of `query` (any of them), same conditions. The
        words most chunks hold are left out while rarer ones remain (see COMMON_TERM_SHARE);
        `fill`: when that matches fewer than k chunks, match again with them."""


def check_vectors(chunks: list, vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    if not chunks and vectors.size == 0:
        return vectors.reshape(0, vectors.shape[-1] if vectors.ndim == 2 else 0)
    if vectors.ndim != 2 or vectors.shape[0] != len(chunks):
        raise ValueError(f"expected one vector per chunk ({len(chunks)}), got an array of shape {vectors.shape}")
    if len(chunks) and not np.isfinite(vectors).all():
        raise ValueError("vectors hold NaN or infinite values")
    return vectors


def chunk_rows(document_id: str, library_id: str, chunks: list[ChunkLike]) -> list[dict]:
    return [{"document_id": document_id, "library_id": library_id, "ordinal": c.ordinal, "page": c.page,
             "start": c.start, "end": c.end, "heading": c.heading, "text": c.text} for c in chunks]


def lexical_text(chunk: ChunkLike) -> str:
    """What the lexical index reads of a chunk: its heading path, then its text."""
    return f"{chunk.heading}\n{chunk.text}" if chunk.heading else chunk.text


# A query term found in more than this share of all chunks is left out of lexical matching while a
# rarer term of the query remains: bm25 gives it little weight, ts_rank_cd none of its rarity, and in
# a corpus of several languages the other language's stopwords are what a cross-language question
# would match (measured on the evaluation set: hybrid recall@5 0.69 with 0.5, 0.84 with 0.1). When
# the terms left match fewer than k chunks, a query asked to fill its list runs again with every
# term under WEIGHTLESS_TERM_SHARE (above it, FTS5's bm25 gives a term an IDF of ~0); hybrid search
# does not ask (the dense list fills it; measured: 0.79 if it did).
COMMON_TERM_SHARE = 0.1
WEIGHTLESS_TERM_SHARE = 0.5


def informative_terms(terms: list[str], shares: dict[str, float], ceiling: float | None = None) -> list[str]:
    """The terms whose share of chunks (0 when unknown) is at most `ceiling` (COMMON_TERM_SHARE),
    or at most the rarest term's when every term is above it."""
    if len(terms) < 2 or not shares:
        return terms
    ceiling = max(COMMON_TERM_SHARE if ceiling is None else ceiling, min(shares.get(t, 0.0) for t in terms))
    return [t for t in terms if shares.get(t, 0.0) <= ceiling]


def lexical_stages(terms: list[str], shares: dict[str, float]) -> list[list[str]]:
    """The term sets a lexical query tries in turn, until one matches k chunks."""
    strict, relaxed = informative_terms(terms, shares), informative_terms(terms, shares, WEIGHTLESS_TERM_SHARE)
    return [strict] if relaxed == strict else [strict, relaxed]


def open_chunk_index(db: Database) -> ChunkIndex:
    """The index of the database's back-end: SQLite (sqlite-vec + FTS5) or PostgreSQL (pgvector + full text)."""
    dialect = db.engine.dialect.name
    if dialect == "sqlite":
        from plateforme.retrieval.sqlite_index import SQLiteChunkIndex
        return SQLiteChunkIndex(db)
    if dialect == "postgresql":
        from plateforme.retrieval.postgres_index import PostgresChunkIndex
        return PostgresChunkIndex(db)
    raise ValueError(f"no chunk index for the {dialect!r} database back-end (SQLite or PostgreSQL)")
