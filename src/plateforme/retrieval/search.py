"""Library search: the passages of the libraries a caller may read that best answer a query.

The requested libraries are narrowed to those the principal may read by one query that carries
`libraries.access.readable_library_ids` (an unknown or unreadable id is answered as not found,
never told apart); the index queries then run over those libraries only, with the document filters
inside them. Dense lists (one per embedding model among the libraries: each group is searched
with its own query vector) and the lexical list are fused by reciprocal rank fusion.
"""

import asyncio
from collections import defaultdict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from sqlalchemy import select

from plateforme.libraries.access import readable_library_ids
from plateforme.libraries.errors import LibraryNotFound
from plateforme.retrieval.errors import SearchError
from plateforme.retrieval.filters import check_filters
from plateforme.retrieval.fusion import reciprocal_rank_fusion
from plateforme.retrieval.index import ChunkIndex, Hit
from plateforme.retrieval.lexical_gate import chunk_words, content_terms, covering
from plateforme.storage.database import Database
from plateforme.storage.library_tables import DocumentChunk, Library, LibraryDocument
from plateforme.tenancy.principal import Principal

if TYPE_CHECKING:
    from plateforme.embeddings.service import EmbeddingService

Mode = Literal["hybrid", "dense", "lexical"]
MODES = ("hybrid", "dense", "lexical")
MAX_TOP_K = 100
MAX_QUERY_CHARS = 8000


@dataclass
class SearchHit:
    document_id: str
    document_name: str
    library_id: str
    page: int  # 1-based page the passage starts on
    start: int  # offsets into the document's text_content: text_content[start:end] == text
    end: int
    text: str
    score: float  # higher is better (cosine similarity, lexical rank, or RRF score for fused lists)


@dataclass
class SearchResult:
    hits: list[SearchHit]
    prompt_tokens: dict[str, int] = field(default_factory=dict)  # per embedding model: the query's tokens


# In hybrid search, a lexical hit scoring under this share of the best lexical hit's score is not
# fused: it matched only a marginal word of the query, and RRF would weigh it by its rank alone
# (measured on the evaluation set, with COMMON_TERM_SHARE: hybrid recall@5 0.76 without, 0.84 with).
LEXICAL_RELATIVE_FLOOR = 0.5


def strong_matches(hits: list[Hit]) -> list[Hit]:
    if not hits or hits[0].score <= 0:
        return hits
    return [hit for hit in hits if hit.score >= LEXICAL_RELATIVE_FLOOR * hits[0].score]


def candidates_for(top_k: int) -> int:
    """How deep each list goes before fusion: deeper than top_k, so a passage ranked well in one
    list and middling in the other can still make it."""
    return min(max(4 * top_k, 20), 400)


class LibrarySearch:
    def __init__(self, db: Database, index: ChunkIndex, embeddings: "EmbeddingService"):
        self.db, self.index, self.embeddings = db, index, embeddings

    async def search(self, principal: Principal, query: str, library_ids: list[str] | None, top_k: int = 5,
                     filters: dict | None = None, mode: Mode = "hybrid") -> list[SearchHit]:
        return (await self.search_with_usage(principal, query, library_ids, top_k, filters, mode)).hits

    async def search_with_usage(self, principal: Principal, query: str, library_ids: list[str] | None,
                                top_k: int = 5, filters: dict | None = None, mode: Mode = "hybrid") -> SearchResult:
        _check(query, library_ids, top_k, mode)
        check_filters(filters)
        libraries = await asyncio.to_thread(self._readable, principal, library_ids)
        if not libraries:
            return SearchResult([])
        depth = candidates_for(top_k)
        groups = self._by_model(libraries) if mode != "lexical" else {}
        # The lexical query runs in its thread while the query embeds and the dense queries run in
        # theirs (SQLite and psycopg release the GIL while the database works).
        lexical = (asyncio.create_task(asyncio.to_thread(self.index.lexical, query, list(libraries), depth, filters,
                                                         mode == "lexical"))
                   if mode != "dense" else None)
        try:
            embedded = await asyncio.gather(*(self._embed_query(model, query, ids) for model, ids in groups.items()))
            lists: list[list[Hit]] = list(await asyncio.gather(
                *(asyncio.to_thread(self.index.dense, vector, groups[model], depth, filters)
                  for model, vector, _ in embedded)))
            if lexical is not None:
                lexical_hits = await lexical
                if mode == "hybrid":
                    lexical_hits = await asyncio.to_thread(self._covering, strong_matches(lexical_hits), query)
                lists.append(lexical_hits)
        except BaseException:
            if lexical is not None:
                lexical.cancel()
            raise
        usage = {model: tokens for model, _, tokens in embedded}
        ranked = lists[0][:top_k] if len(lists) == 1 else reciprocal_rank_fusion(lists, limit=top_k)
        return SearchResult(await asyncio.to_thread(self._passages, ranked), usage)

    def _readable(self, principal: Principal, library_ids: list[str] | None) -> dict[str, str]:
        """{library id: embedding model} of the requested libraries the principal may read (all of
        them when none are named); LibraryNotFound for a named one it may not."""
        statement = select(Library.id, Library.embedding_model).where(Library.id.in_(readable_library_ids(principal)))
        if library_ids is not None:
            statement = statement.where(Library.id.in_(set(library_ids)))
        with self.db.session() as session:
            found = dict(session.execute(statement).all())
        for library_id in library_ids or ():
            if library_id not in found:
                raise LibraryNotFound(library_id)
        return found

    def _by_model(self, libraries: dict[str, str]) -> dict[str, list[str]]:
        groups: dict[str, list[str]] = defaultdict(list)
        for library_id, model in libraries.items():
            try:
                served = self.embeddings.resolve(model)
            except LookupError:
                raise SearchError(
                    f"library {library_id!r} is embedded with {model!r}, which this server does not serve: add "
                    "that model to the models config, or search it with mode 'lexical'", 503, "library_ids") from None
            groups[served].append(library_id)
        return groups

    async def _embed_query(self, model: str, query: str, library_ids: list[str]):
        try:
            embedded = await self.embeddings.embed(model, [query], input_type="query")
        except LookupError:
            raise SearchError(f"the embedding model {model!r} of libraries {library_ids} is not served here: add it "
                              "to the models config, or search with mode 'lexical'", 503, "library_ids") from None
        except ValueError as exc:  # too long for the model's window, or otherwise refused
            raise SearchError(f"query: {exc}", 400, "query") from exc
        return model, embedded.vectors[0], embedded.prompt_tokens

    def _covering(self, hits: list[Hit], query: str) -> list[Hit]:
        """The lexical hits holding enough of the query's content words to be fused (lexical_gate)."""
        if not hits:
            return hits
        statement = select(DocumentChunk.id, DocumentChunk.heading, DocumentChunk.text).where(
            DocumentChunk.id.in_([hit.chunk_id for hit in hits]))
        with self.db.session() as session:
            found = {chunk_id: chunk_words(heading, text) for chunk_id, heading, text in session.execute(statement)}
        return covering(hits, content_terms(query), found)

    def _passages(self, ranked: list[Hit]) -> list[SearchHit]:
        if not ranked:
            return []
        statement = (select(DocumentChunk.id, DocumentChunk.document_id, LibraryDocument.name, DocumentChunk.library_id,
                            DocumentChunk.page, DocumentChunk.start, DocumentChunk.end, DocumentChunk.text)
                     .join(LibraryDocument, LibraryDocument.id == DocumentChunk.document_id)
                     .where(DocumentChunk.id.in_([hit.chunk_id for hit in ranked])))
        with self.db.session() as session:
            rows = {row[0]: row[1:] for row in session.execute(statement)}
        # A chunk replaced between the index query and this read (its document reprocessed) is left out.
        return [SearchHit(*rows[hit.chunk_id], score=hit.score) for hit in ranked if hit.chunk_id in rows]


def _check(query: str, library_ids: list[str] | None, top_k: int, mode: str) -> None:
    if not isinstance(query, str) or not query.strip():
        raise SearchError("query: give the text to search for (it is empty)", 400, "query")
    if len(query) > MAX_QUERY_CHARS:
        raise SearchError(f"query: at most {MAX_QUERY_CHARS} characters, got {len(query)}", 400, "query")
    if library_ids is not None and not library_ids:
        raise SearchError("library_ids: name at least one library, or leave it out to search every library "
                          "this key can read", 400, "library_ids")
    if isinstance(top_k, bool) or not isinstance(top_k, int) or not 1 <= top_k <= MAX_TOP_K:
        raise SearchError(f"top_k: an integer from 1 to {MAX_TOP_K}, got {top_k!r}", 400, "top_k")
    if mode not in MODES:
        raise SearchError(f"mode: one of {', '.join(MODES)}, got {mode!r}", 400, "mode")
