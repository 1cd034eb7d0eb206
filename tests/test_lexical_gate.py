"""The lexical gate of hybrid search: which lexical hits are fused (retrieval/lexical_gate.py)."""

from plateforme.retrieval.index import Hit
from plateforme.retrieval.lexical_gate import chunk_words, content_terms, covering


def test_content_terms_drop_function_words_unless_nothing_else_remains():
    assert content_terms("Combien de jours de congés payés ?") == ["jours", "conges", "payes"]
    assert content_terms("What is the notice period?") == ["notice", "period"]
    assert content_terms("what is it") == ["what", "is", "it"]  # only function words: all kept


def test_hits_sharing_only_generic_words_are_not_fused():
    question = content_terms("Combien de jours de congés payés par an ?")  # jours, conges, payes, an
    chunks = {
        1: chunk_words("Congés", "Chaque salarié a droit à 25 jours de congés payés."),  # 3 of 4
        2: chunk_words(None, "La salle de réunion est au deuxième étage de la tour."),  # only "de", "la"
        3: chunk_words("Annual leave", "Employees get 25 days of paid leave per year."),  # none
    }
    hits = [Hit(2, 9.0), Hit(1, 8.0), Hit(3, 1.0)]
    assert covering(hits, question, chunks) == [Hit(1, 8.0)]
    assert covering(hits, [], chunks) == hits  # no terms: nothing to judge by


def test_the_heading_counts_as_the_chunks_words():
    chunks = {7: chunk_words("Politique de télétravail", "Deux jours par semaine au plus.")}
    assert covering([Hit(7, 1.0)], content_terms("télétravail semaine"), chunks) == [Hit(7, 1.0)]
