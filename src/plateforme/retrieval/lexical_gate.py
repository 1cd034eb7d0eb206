"""Which lexical hits hybrid search fuses: those holding at least half of the query's content words.

A question asked in another language than its document's finds, lexically, only passages of its
own language that share generic words with it ("de", "la", "the", "what"...). Fused by rank,
such hits push out the passage that dense search found across languages. So hybrid search fuses a
lexical hit only when its heading and text hold at least COVERAGE of the query's content words
(its words less the function words of STOPWORDS, or all of them when that leaves none).
Measured on the shipped evaluation set (benchmarks/bench_retrieval.py, language centering on):
hybrid recall@5 0.946 with the gate on SQLite and PostgreSQL alike (cross-language questions
0.872), against 0.880 (SQLite) and 0.793 (PostgreSQL) without it.
"""

from plateforme.retrieval.index import Hit
from plateforme.retrieval.text_folding import query_terms, words

COVERAGE = 0.5

# Function words of French and English, folded (no diacritics), as query_terms yields them.
STOPWORDS = frozenset("""
a au aux avec ce ces cet cette comment combien d dans de des du elle elles en est et etre faut il ils
j je l la le les leur leurs lui m ma mais me mes mon n ne nos notre nous on ou par pas pour qu que quel
quelle quelles quels qui s sa se ses son sont sur t ta te tes ton tu un une vos votre vous y peut doit
doivent faire fait quand ont a-t-il avoir
a an and are as at be been being by can could did do does for from had has have how i if in into is it
its may me must my no not of on or our shall should so than that the their them then there these they
this those to us was we were what when where which who whom why will with would you your
""".split())


def content_terms(query: str) -> list[str]:
    """The query's folded words less function words (all of them when only function words remain)."""
    terms = query_terms(query)
    return [t for t in terms if t not in STOPWORDS] or terms


def covering(hits: list[Hit], terms: list[str], chunk_words: dict[int, set[str]],
             coverage: float = COVERAGE) -> list[Hit]:
    """The hits whose chunk holds at least `coverage` of `terms` (`chunk_words`: chunk id -> its
    folded words), in their order."""
    if not terms:
        return hits
    wanted = set(terms)
    return [hit for hit in hits if len(wanted & chunk_words.get(hit.chunk_id, set())) >= coverage * len(wanted)]


def chunk_words(heading: str | None, text: str) -> set[str]:
    return words(f"{heading or ''}\n{text}")
