"""The chunk index on SQLite: sqlite-vec for dense vectors, FTS5 for lexical search.

Vectors live in a vec0 virtual table per dimension (`chunk_vectors_<d>`, cosine distance, the
library id as its partition key), lexical entries in one contentless FTS5 table (`chunk_fts`,
rowid = chunk id, `unicode61 remove_diacritics 2` over text folded in Python). Triggers on
`document_chunks` delete a chunk's vector and lexical entry with its row, so a document or a library
deleted by any path (a cascade included) leaves nothing behind in the index.

Dense queries are exact (vec0 scans the partitions of the libraries asked for, about 1 µs of CPU
per vector; measured while choosing: a plain blob column read through vec_distance_cosine over a
filtered join was 4x slower, a vec0 metadata column instead of the partition key scans every
library, a binary-quantised coarse pass with float re-scoring was no faster inside vec0; timings
in benchmarks/bench_retrieval_latency.py). The document conditions (status `done`, attribute
filters) are part of the SQL statement: first each library's `oversample * k` nearest chunks, joined with their
documents and filtered; when that does not prove the top k (too few passed), the query runs again
with the set of passing chunk ids as a constraint of the vector scan itself
(`chunk_id IN (SELECT ...)`), which is exact whatever the filters keep.
"""

import threading

import numpy as np
from sqlalchemy import Connection, insert, text

from plateforme.retrieval.filters import check_filters, chunk_where, library_list
from plateforme.retrieval.index import Hit, check_vectors, chunk_rows, lexical_stages, lexical_text
from plateforme.retrieval.text_folding import fold, fts5_expression, query_terms
from plateforme.storage.database import Database
from plateforme.storage.library_tables import DocumentChunk

VEC0_MAX_K = 4096  # sqlite-vec's limit on k in one KNN query
# Vectors per vec0 storage chunk (default 1024): a library's scan reads whole chunks, so a small
# library wastes less of its scan with smaller ones (measured: 7% slower on a 25 000-vector scan).
VEC0_CHUNK_SIZE = 256
_CHUNKS = DocumentChunk.__table__

_FTS_DDL = ("CREATE VIRTUAL TABLE IF NOT EXISTS chunk_fts USING fts5(text, content='', contentless_delete=1, "
            "tokenize='unicode61 remove_diacritics 2')")
_FTS_VOCABULARY = "CREATE VIRTUAL TABLE IF NOT EXISTS chunk_fts_terms USING fts5vocab(chunk_fts, 'row')"
_FTS_TRIGGER = ("CREATE TRIGGER IF NOT EXISTS document_chunks_fts_delete AFTER DELETE ON document_chunks "
                "BEGIN DELETE FROM chunk_fts WHERE rowid = old.id; END")


def vector_table(dimension: int) -> str:
    return f"chunk_vectors_{int(dimension)}"


class SQLiteChunkIndex:
    def __init__(self, db: Database, oversample: int = 2):
        self.db = db
        self.oversample = oversample
        self._lock = threading.Lock()
        self._base_ready = False
        self._dimensions: set[int] = set()

    # --- structures, created when first needed ---------------------------------------------------

    def _ensure_base(self, conn: Connection) -> None:
        if not self._base_ready:
            with self._lock:
                conn.execute(text(_FTS_DDL))
                conn.execute(text(_FTS_VOCABULARY))
                conn.execute(text(_FTS_TRIGGER))
                self._base_ready = True

    def _ensure_dimension(self, conn: Connection, dimension: int) -> None:
        if dimension in self._dimensions:
            return
        table = vector_table(dimension)
        with self._lock:
            conn.execute(text(f"CREATE VIRTUAL TABLE IF NOT EXISTS {table} USING vec0(chunk_id INTEGER PRIMARY KEY, "
                              f"library_id TEXT PARTITION KEY, embedding float[{int(dimension)}] "
                              f"distance_metric=cosine, chunk_size={VEC0_CHUNK_SIZE})"))
            conn.execute(text(f"CREATE TRIGGER IF NOT EXISTS document_chunks_{table}_delete AFTER DELETE ON "
                              f"document_chunks BEGIN DELETE FROM {table} WHERE chunk_id = old.id; END"))
            self._dimensions.add(dimension)

    def _has_table(self, conn: Connection, name: str) -> bool:
        return conn.execute(text("SELECT 1 FROM sqlite_master WHERE name = :n"), {"n": name}).first() is not None

    # --- writes ------------------------------------------------------------------------------------

    def write_document(self, document_id: str, library_id: str, chunks: list, vectors: np.ndarray) -> None:
        vectors = check_vectors(chunks, vectors)
        with self.db.engine.begin() as conn:
            self._ensure_base(conn)
            if chunks:
                self._ensure_dimension(conn, vectors.shape[1])
            conn.execute(text("DELETE FROM document_chunks WHERE document_id = :d"), {"d": document_id})
            if not chunks:
                return
            ids = conn.execute(insert(_CHUNKS).returning(_CHUNKS.c.id, sort_by_parameter_order=True),
                               chunk_rows(document_id, library_id, chunks)).scalars().all()
            table = vector_table(vectors.shape[1])
            conn.execute(text(f"INSERT INTO {table}(chunk_id, library_id, embedding) VALUES (:id, :lib, :e)"),
                         [{"id": i, "lib": library_id, "e": v.tobytes()} for i, v in zip(ids, vectors)])
            conn.execute(text("INSERT INTO chunk_fts(rowid, text) VALUES (:id, :t)"),
                         [{"id": i, "t": fold(lexical_text(c))} for i, c in zip(ids, chunks)])

    def delete_document(self, document_id: str) -> None:
        with self.db.engine.begin() as conn:
            self._ensure_base(conn)  # its trigger removes the lexical entries (the vectors have theirs)
            conn.execute(text("DELETE FROM document_chunks WHERE document_id = :d"), {"d": document_id})

    def delete_library(self, library_id: str) -> None:
        with self.db.engine.begin() as conn:
            self._ensure_base(conn)
            conn.execute(text("DELETE FROM document_chunks WHERE library_id = :l"), {"l": library_id})

    # --- queries -----------------------------------------------------------------------------------

    def dense(self, vector: np.ndarray, library_ids: list[str], k: int, filters: dict | None) -> list[Hit]:
        checked = check_filters(filters)
        vector = np.asarray(vector, dtype=np.float32).reshape(-1)
        k = min(int(k), VEC0_MAX_K)
        if not library_ids or k < 1:
            return []
        table = vector_table(vector.shape[0])
        where = chunk_where("sqlite", library_ids, checked)
        partitions = library_list("library_id", library_ids, prefix="part")
        params = {"q": vector.tobytes(), **where.params, **partitions.params}
        with self.db.engine.connect() as conn:
            if vector.shape[0] not in self._dimensions and not self._has_table(conn, table):
                return []  # no chunk of this dimension was ever written
            rows = self._nearest_then_filtered(conn, table, partitions.sql, where.sql, params, k)
            if rows is None:  # not provably the top k: constrain the vector scan itself to the passing chunks
                rows = conn.execute(text(  # k per library (vec0), then the k nearest of those
                    f"WITH knn AS MATERIALIZED (SELECT chunk_id, distance FROM {table} WHERE embedding MATCH :q "
                    f"AND k = :k AND {partitions.sql} AND chunk_id IN (SELECT c.id FROM document_chunks c "
                    f"JOIN library_documents d ON d.id = c.document_id WHERE {where.sql})) "
                    "SELECT chunk_id, distance FROM knn ORDER BY distance LIMIT :k"), {**params, "k": k}).all()
        return [Hit(int(chunk_id), 1.0 - float(distance)) for chunk_id, distance in rows]

    def _nearest_then_filtered(self, conn: Connection, table: str, partitions: str, where: str, params: dict,
                               k: int) -> list | None:
        """The k nearest passing chunks among each library's `oversample * k` nearest, or None when
        that is not provably the true top k (a library's candidates ran out before the k-th passing
        distance). vec0 answers `library_id IN (...)` with k rows per library; the frontier also
        covers a single pool of k rows, so the proof holds either way."""
        per_library = min(max(self.oversample * k, k + 16), VEC0_MAX_K)
        rows = conn.execute(text(
            f"WITH knn AS MATERIALIZED (SELECT chunk_id, library_id, distance FROM {table} WHERE embedding MATCH :q "
            f"AND k = :kk AND {partitions}), "
            "full AS (SELECT max(distance) AS d FROM knn GROUP BY library_id HAVING count(*) >= :kk "
            "UNION ALL SELECT max(distance) FROM knn HAVING count(*) >= :kk), "
            "frontier AS (SELECT min(d) AS d FROM full) "
            "SELECT knn.chunk_id, knn.distance, (SELECT d FROM frontier) FROM knn "
            f"JOIN document_chunks c ON c.id = knn.chunk_id JOIN library_documents d ON d.id = c.document_id "
            f"WHERE {where} ORDER BY knn.distance LIMIT :k"), {**params, "kk": per_library, "k": k}).all()
        if not rows:
            return None
        frontier = rows[0][2]
        if frontier is None or (len(rows) == k and rows[-1][1] <= frontier):
            return [(chunk_id, distance) for chunk_id, distance, _ in rows]
        return None

    def lexical(self, query: str, library_ids: list[str], k: int, filters: dict | None,
                fill: bool = True) -> list[Hit]:
        checked = check_filters(filters)
        terms = query_terms(query)
        if not library_ids or not terms or k < 1:
            return []
        where = chunk_where("sqlite", library_ids, checked)
        if not self._base_ready:
            with self.db.engine.begin() as conn:
                self._ensure_base(conn)
        with self.db.engine.connect() as conn:
            for stage in lexical_stages(terms, self._term_shares(conn, terms))[:None if fill else 1]:
                rows = conn.execute(text(
                    "SELECT chunk_fts.rowid, bm25(chunk_fts) AS rank FROM chunk_fts JOIN document_chunks c "
                    "ON c.id = chunk_fts.rowid JOIN library_documents d ON d.id = c.document_id "
                    f"WHERE chunk_fts MATCH :m AND {where.sql} ORDER BY rank LIMIT :k"),
                    {"m": fts5_expression(stage), "k": int(k), **where.params}).all()
                if len(rows) >= k:
                    break
        return [Hit(int(chunk_id), -float(rank)) for chunk_id, rank in rows]

    def _term_shares(self, conn: Connection, terms: list[str]) -> dict[str, float]:
        """The share of all chunks each term is found in, from FTS5's vocabulary (a term it never
        saw is left out); {} for a single term, which is always kept."""
        if len(terms) < 2:
            return {}
        names = [f"t{i}" for i in range(len(terms))]
        frequency = conn.execute(text(
            f"SELECT term, doc FROM chunk_fts_terms WHERE term IN ({', '.join(':' + n for n in names)})"),
            dict(zip(names, terms))).all()
        chunks = conn.execute(text("SELECT count(*) FROM document_chunks")).scalar() if frequency else 0
        return {term: n / chunks for term, n in frequency} if chunks else {}
