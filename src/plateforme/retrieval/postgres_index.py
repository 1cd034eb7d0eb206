"""The chunk index on PostgreSQL: pgvector for dense vectors, full-text search for lexical.

Vectors live in a table per dimension (`chunk_vectors_<d>`, a `vector(d)` column), lexical entries
in `chunk_lexemes` (a tsvector of the diacritics-folded text under the 'simple' configuration, GIN
indexed; folding is done in Python, as `unaccent` may be missing). Both reference
`document_chunks(id) ON DELETE CASCADE`, so deleting chunks, a document or a library by any path
removes their index entries with them.

Dense queries are exact cosine distance (`<=>`) over the chunks that pass the library, status and
attribute conditions, which are part of the same statement (an HNSW index would be approximate and
drops rows that the filters then reject; see benchmarks/bench_retrieval_latency.py for the timings).
Lexical queries leave out the terms that most chunks hold when rarer ones are asked for (see
index.COMMON_TERM_SHARE), as the SQLite index does. The pgvector extension is created when the
first vectors are written: the database user needs the
right to `CREATE EXTENSION vector` once, or an administrator runs it beforehand.
"""

import threading
import time

import numpy as np
from sqlalchemy import Connection, insert, text
from sqlalchemy.exc import DBAPIError

from plateforme.retrieval.errors import IndexSetupFailed
from plateforme.retrieval.filters import check_filters, chunk_where
from plateforme.retrieval.index import Hit, check_vectors, chunk_rows, lexical_stages, lexical_text
from plateforme.retrieval.text_folding import fold, query_terms
from plateforme.storage.database import Database
from plateforme.storage.library_tables import DocumentChunk

_CHUNKS = DocumentChunk.__table__
COMMON_TERMS_TTL_S = 60.0  # how long the lexemes' frequencies read from pg_stats are reused
_DDL_LOCK = 0x706C6174_72657472 & 0x7FFFFFFFFFFFFFFF  # one advisory lock for the index's DDL: replicas take turns

_BASE_DDL = (
    "CREATE TABLE IF NOT EXISTS chunk_lexemes (chunk_id BIGINT PRIMARY KEY "
    "REFERENCES document_chunks(id) ON DELETE CASCADE, tsv TSVECTOR NOT NULL)",
    "CREATE INDEX IF NOT EXISTS ix_chunk_lexemes_tsv ON chunk_lexemes USING GIN (tsv)",
)


def vector_table(dimension: int) -> str:
    return f"chunk_vectors_{int(dimension)}"


def vector_literal(vector: np.ndarray) -> str:
    """pgvector's text form; %.9g keeps every float32 exactly."""
    return "[" + ",".join("%.9g" % x for x in vector.tolist()) + "]"


class PostgresChunkIndex:
    def __init__(self, db: Database):
        self.db = db
        self._lock = threading.Lock()
        self._base_ready = False
        self._dimensions: set[int] = set()
        self._common: tuple[float, dict[str, float]] | None = None  # (read at, {lexeme: share of chunks})

    # --- structures, created when first needed ---------------------------------------------------

    def _run_ddl(self, statements: tuple[str, ...] | list[str]) -> None:
        try:
            with self.db.engine.begin() as conn:
                conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _DDL_LOCK})
                for statement in statements:
                    conn.execute(text(statement))
        except DBAPIError as exc:
            raise IndexSetupFailed(
                f"could not create the library index tables in PostgreSQL ({exc.orig}); the vector index needs "
                "the pgvector extension: install it on the server and run `CREATE EXTENSION vector` as a "
                "superuser in this database (or grant the platform's user the right to)") from exc

    def _ensure_base(self) -> None:
        if not self._base_ready:
            with self._lock:
                if not self._base_ready:
                    self._run_ddl(_BASE_DDL)
                    self._base_ready = True

    def _ensure_dimension(self, dimension: int) -> None:
        self._ensure_base()
        if dimension in self._dimensions:
            return
        table = vector_table(dimension)
        with self._lock:
            self._run_ddl([
                "CREATE EXTENSION IF NOT EXISTS vector",
                f"CREATE TABLE IF NOT EXISTS {table} (chunk_id BIGINT PRIMARY KEY REFERENCES document_chunks(id) "
                f"ON DELETE CASCADE, library_id VARCHAR(40) NOT NULL, embedding vector({int(dimension)}) NOT NULL)",
                f"CREATE INDEX IF NOT EXISTS ix_{table}_library ON {table} (library_id)",
            ])
            self._dimensions.add(dimension)

    def _has_table(self, conn: Connection, name: str) -> bool:
        return conn.execute(text("SELECT to_regclass(:n) IS NOT NULL"), {"n": name}).scalar()

    # --- writes ------------------------------------------------------------------------------------

    def write_document(self, document_id: str, library_id: str, chunks: list, vectors: np.ndarray) -> None:
        vectors = check_vectors(chunks, vectors)
        self._ensure_base()
        if chunks:
            self._ensure_dimension(vectors.shape[1])
        with self.db.engine.begin() as conn:
            conn.execute(text("DELETE FROM document_chunks WHERE document_id = :d"), {"d": document_id})
            if not chunks:
                return
            ids = conn.execute(insert(_CHUNKS).returning(_CHUNKS.c.id, sort_by_parameter_order=True),
                               chunk_rows(document_id, library_id, chunks)).scalars().all()
            table = vector_table(vectors.shape[1])
            conn.execute(text(f"INSERT INTO {table} (chunk_id, library_id, embedding) "
                              "VALUES (:id, :lib, CAST(:e AS vector))"),
                         [{"id": i, "lib": library_id, "e": vector_literal(v)} for i, v in zip(ids, vectors)])
            conn.execute(text("INSERT INTO chunk_lexemes (chunk_id, tsv) VALUES (:id, to_tsvector('simple', :t))"),
                         [{"id": i, "t": fold(lexical_text(c))} for i, c in zip(ids, chunks)])

    def delete_document(self, document_id: str) -> None:
        with self.db.engine.begin() as conn:  # the vectors and lexemes go with the rows (ON DELETE CASCADE)
            conn.execute(text("DELETE FROM document_chunks WHERE document_id = :d"), {"d": document_id})

    def delete_library(self, library_id: str) -> None:
        with self.db.engine.begin() as conn:
            conn.execute(text("DELETE FROM document_chunks WHERE library_id = :l"), {"l": library_id})

    # --- queries -----------------------------------------------------------------------------------

    def dense(self, vector: np.ndarray, library_ids: list[str], k: int, filters: dict | None) -> list[Hit]:
        checked = check_filters(filters)
        vector = np.asarray(vector, dtype=np.float32).reshape(-1)
        if not library_ids or k < 1:
            return []
        table = vector_table(vector.shape[0])
        where = chunk_where("postgresql", library_ids, checked)
        with self.db.engine.connect() as conn:
            if vector.shape[0] not in self._dimensions and not self._has_table(conn, table):
                return []  # no chunk of this dimension was ever written
            rows = conn.execute(text(
                f"SELECT v.chunk_id, v.embedding <=> CAST(:q AS vector) AS distance FROM {table} v "
                "JOIN document_chunks c ON c.id = v.chunk_id JOIN library_documents d ON d.id = c.document_id "
                f"WHERE {where.sql} ORDER BY distance, v.chunk_id LIMIT :k"),
                {"q": vector_literal(vector), "k": int(k), **where.params}).all()
        return [Hit(int(chunk_id), 1.0 - float(distance)) for chunk_id, distance in rows]

    def lexical(self, query: str, library_ids: list[str], k: int, filters: dict | None,
                fill: bool = True) -> list[Hit]:
        checked = check_filters(filters)
        terms = query_terms(query)
        if not library_ids or not terms or k < 1:
            return []
        where = chunk_where("postgresql", library_ids, checked)
        with self.db.engine.connect() as conn:
            if not self._base_ready and not self._has_table(conn, "chunk_lexemes"):
                return []
            for stage in lexical_stages(terms, self._term_shares(conn, terms))[:None if fill else 1]:
                # Each term through plainto_tsquery (no syntax of the user's is ever parsed), OR-ed together.
                tsquery = " || ".join(f"plainto_tsquery('simple', :t{i})" for i in range(len(stage)))
                rows = conn.execute(text(
                    f"SELECT x.chunk_id, ts_rank_cd(x.tsv, tq.query) AS rank FROM (SELECT {tsquery} AS query) tq "
                    "CROSS JOIN chunk_lexemes x JOIN document_chunks c ON c.id = x.chunk_id "
                    "JOIN library_documents d ON d.id = c.document_id "
                    f"WHERE x.tsv @@ tq.query AND {where.sql} ORDER BY rank DESC, x.chunk_id LIMIT :k"),
                    {"k": int(k), **{f"t{i}": t for i, t in enumerate(stage)}, **where.params}).all()
                if len(rows) >= k:
                    break
        return [Hit(int(chunk_id), float(rank)) for chunk_id, rank in rows]

    def _term_shares(self, conn: Connection, terms: list[str]) -> dict[str, float]:
        """The share of chunks each term is found in, by ANALYZE's statistics of the lexemes
        (pg_stats.most_common_elems, read once a minute; a rarer lexeme is not listed): ts_rank_cd
        has no notion of a term's rarity, so a stopword ("the", "de") would both rank chunks and
        make every chunk a match to rank. {} without statistics yet (no ANALYZE): every term is kept."""
        if len(terms) < 2:
            return {}
        now = time.monotonic()
        if self._common is None or now - self._common[0] > COMMON_TERMS_TTL_S:
            row = conn.execute(text(
                "SELECT most_common_elems::text::text[], most_common_elem_freqs FROM pg_stats "
                "WHERE schemaname = current_schema() AND tablename = 'chunk_lexemes' AND attname = 'tsv'")).first()
            common = dict(zip(row[0], row[1])) if row is not None and row[0] is not None else {}
            self._common = (now, common)
        return self._common[1]
