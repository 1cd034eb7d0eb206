"""The retrieval evaluation on the shipped set (benchmarks/data/retrieval/): shared by
benchmarks/bench_retrieval.py (the numbers) and tests/test_retrieval_quality.py (the floors).

The documents are ingested through the platform's own parsing, chunking, embedding service
(centered by language, as the gateway's retrieval embeds: retrieval/language_centering.py) and
chunk index (benchmarks/retrieval_ingest.py), then every question is searched through
LibrarySearch.search in each mode, with the same embeddings.

A question is answered at rank r when the r-th hit is a chunk of its document whose [start, end)
overlaps the labelled answer's span: `answer_text` found in the document's text_content (exactly,
or with runs of whitespace taken as one, since a PDF's text layer breaks lines where the source
had spaces). Each question is searched with top_k=5 (the route's default, and what the target is
about: the fused list depends on top_k, since each list goes 4 x top_k deep before fusion).
recall@5: the share answered within those 5; MRR@5: the mean of 1/r (0 when not there). Every hit
is also checked as a citation: text_content[start:end] == text and `page` is the page where
`start` falls.
"""

import json
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from retrieval_ingest import Document, Ingested, language_of

DATA = Path(__file__).parent / "data" / "retrieval"
QUESTIONS = DATA / "questions.jsonl"
MODES = ("dense", "lexical", "hybrid")
RECALL_AT = 5
RANKED = RECALL_AT  # hits asked for per question (top_k), over which MRR is counted too
TARGET_HYBRID_RECALL = 0.9  # issue 12's target: hybrid recall@5 >= 0.9

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
