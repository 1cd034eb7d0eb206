"""Text as the lexical index sees it: diacritics removed and case folded, in Python, so that SQLite
and PostgreSQL (whose test server has no `unaccent`) fold alike: "Été" and "ete" are one term."""

import re
import unicodedata

MAX_QUERY_TERMS = 64
_WORD = re.compile(r"\w+")


def fold(text: str) -> str:
    """Remove diacritics (NFKD, combining marks dropped) and case-fold. Only ever used for index
    and query terms, never for the text handed back (its offsets are those of the original)."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch)).casefold()


def query_terms(query: str) -> list[str]:
    """The folded words of a user's query, each once, in order (at most MAX_QUERY_TERMS): only
    letters and digits, so no operator or quote of the user's can reach a full-text query syntax."""
    seen: dict[str, None] = {}
    for word in _WORD.findall(fold(query)):
        seen.setdefault(word, None)
        if len(seen) == MAX_QUERY_TERMS:
            break
    return list(seen)


def words(text: str) -> set[str]:
    """The folded words of a text (as query_terms sees words)."""
    return set(_WORD.findall(fold(text)))


def fts5_expression(terms: list[str]) -> str:
    """An FTS5 MATCH expression: each term a quoted string (a literal, whatever it spells: AND,
    NEAR, *), joined by OR. Terms come from `query_terms` (no double quote inside); doubled anyway."""
    return " OR ".join('"' + term.replace('"', '""') + '"' for term in terms)
