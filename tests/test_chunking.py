"""Chunking by headings and pages: offsets, pages, heading paths, sizes, overlap (hand-made and
random documents)."""

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from plateforme.libraries.chunking import chunk_document
from plateforme.libraries.parsing import ParsedDocument, ParsedPage


def doc(*pages: str) -> ParsedDocument:
    return ParsedDocument([ParsedPage(i, text, False) for i, text in enumerate(pages, 1)])


def check_invariants(parsed: ParsedDocument, chunks, max_chars: int) -> None:
    text, offsets = parsed.text_content, parsed.page_offsets
    for i, chunk in enumerate(chunks):
        assert chunk.ordinal == i
        assert text[chunk.start:chunk.end] == chunk.text and chunk.text == chunk.text.strip() and chunk.text
        assert len(chunk.text) <= max_chars
        assert offsets[chunk.page - 1] <= chunk.start
        assert chunk.page == len(offsets) or chunk.start < offsets[chunk.page]
        # a heading line only ever opens a chunk: a chunk never spans two sections
        assert not re.search(r"\n {0,3}#{1,6}[ \t]+\S", chunk.text)
    starts = [c.start for c in chunks]
    assert starts == sorted(starts) and len(set(starts)) == len(starts)


def test_sections_pages_and_heading_paths():
    parsed = doc("# Guide\n\n## Installation\n\nRun the installer.\n\n## Usage\n\nStart it.",
                 "### Options\n\nUse --fast.\n\n# Annexe\n\nTexte final.")
    chunks = chunk_document(parsed)
    assert [(c.heading, c.page, c.text) for c in chunks] == [
        ("Guide > Installation", 1, "## Installation\n\nRun the installer."),
        ("Guide > Usage", 1, "## Usage\n\nStart it."),
        ("Guide > Usage > Options", 2, "### Options\n\nUse --fast."),
        ("Annexe", 2, "# Annexe\n\nTexte final."),
    ]
    check_invariants(parsed, chunks, 1200)


def test_text_before_any_heading_and_code_fences_are_not_headings():
    parsed = doc("Preamble line.\n\n```\n# not a heading\n```\n\n# Real\n\nBody.", "```\n# Unclosed fence")
    chunks = chunk_document(parsed)
    assert [(c.heading, c.text) for c in chunks] == [(None, "Preamble line.\n\n```\n# not a heading\n```"),
                                                       ("Real", "# Real\n\nBody.\n\n```"),
                                                       ("Unclosed fence", "# Unclosed fence")]


def test_setext_headings_but_not_thematic_breaks_after_lists():
    parsed = doc("Titre\n=====\n\nIntro.\n\nPartie\n------\n\nTexte.\n\n- un point\n---\n\nfin")
    assert [(c.heading, c.text) for c in chunk_document(parsed)] == [
        ("Titre", "Titre\n=====\n\nIntro."), ("Titre > Partie", "Partie\n------\n\nTexte.\n\n- un point\n---\n\nfin")]


def test_long_sections_split_at_sentences_with_overlap_and_cross_pages():
    sentence = "Chaque phrase de ce paragraphe parle d'un sujet différent, numéro {}. "
    page1 = "# Rapport\n\n" + "".join(sentence.format(i) for i in range(40))
    page2 = "".join(sentence.format(i) for i in range(40, 60))
    parsed = doc(page1, page2)
    chunks = chunk_document(parsed, max_chars=500, overlap_chars=120)
    check_invariants(parsed, chunks, 500)
    assert len(chunks) > 6 and {c.heading for c in chunks} == {"Rapport"}
    assert {c.page for c in chunks} == {1, 2}
    for before, after in zip(chunks, chunks[1:]):
        assert after.start < before.end  # overlapping
        assert before.text.endswith(".") and after.text.startswith("Chaque")  # sentence boundaries
    covered = "".join(parsed.text_content[c.start:c.end] for c in chunks)
    assert all(sentence.format(i).strip() in covered for i in range(60))


def test_one_huge_word_is_cut_and_empty_documents_have_no_chunks():
    parsed = doc("x" * 2500)
    chunks = chunk_document(parsed, max_chars=1000, overlap_chars=100)
    check_invariants(parsed, chunks, 1000)
    assert chunks[0].text == "x" * 1000 and chunks[-1].end == 2500
    assert chunk_document(doc("", "  ")) == [] and chunk_document(ParsedDocument([])) == []


_words = st.sampled_from(["alpha", "béta", "gamma.", "delta,", "épsilon!", "zêta?", "x" * 70, "\n", "\n\n",
                          "# Titre", "## Sous-titre", "### Détail", "-", "1."])
_page = st.lists(_words, max_size=120).map(lambda words: " ".join(words).replace(" \n", "\n"))


@settings(max_examples=150, deadline=None)
@given(pages=st.lists(_page, min_size=1, max_size=4), max_chars=st.integers(40, 400),
       overlap=st.integers(0, 200))
def test_random_documents_keep_the_invariants(pages, max_chars, overlap):
    parsed = doc(*(text.strip() for text in pages))
    check_invariants(parsed, chunk_document(parsed, max_chars=max_chars, overlap_chars=overlap), max_chars)
