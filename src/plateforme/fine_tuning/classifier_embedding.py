"""A classifier job's embedding stage, between the trainer's `validate` and `run`: the gateway embeds
the texts of examples.jsonl with the served embedding model into features.npy (one float32 row
per line, in order), which the trainer trains the head on.

Texts go to the EmbeddingService in batches (it batches further with other callers), so the
job shares the embedding model with live requests instead of holding it; file reads and writes
run in the thread pool. The features are written under a temporary name and renamed once
complete: a restarted job finds them whole, or embeds again.
"""

import asyncio
import json
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from plateforme.engines.errors import EngineUnavailable

BATCH = 64
STOP_CHECK_EVERY_S = 1.0
# How long a batch waits for the embedding model while it is down, starting or full (a job
# resumed at the gateway's start may reach it before its worker is up).
UNAVAILABLE_FOR_S = 300.0


class EmbeddingStopped(Exception):
    """The job was cancelled, or its gateway is stopping, while its examples were being embedded."""


@dataclass
class EmbeddingProgress:
    embedded: int
    total: int
    tokens: int


def read_texts(examples: Path) -> list[str]:
    """The `text` of every line of examples.jsonl (blocking)."""
    with open(examples, encoding="utf-8") as handle:
        return [json.loads(line)["text"] for line in handle if line.strip()]


def features_complete(features: Path, rows: int) -> bool:
    """Whether `features` holds the `rows` vectors already (a job resumed after its embedding)."""
    try:
        return np.load(features, mmap_mode="r").shape[0] == rows
    except (OSError, ValueError):
        return False


async def embed_examples(embeddings, model: str, input_type: str, examples: Path, features: Path,
                         on_progress: Callable[[EmbeddingProgress], Awaitable[None]],
                         should_stop: Callable[[], Awaitable[bool]]) -> int | None:
    """Embed the texts of `examples` into `features`; the embedding tokens read, or None when
    `features` was complete already. Raises EmbeddingStopped when `should_stop()` says so, and
    the EmbeddingService's errors (a text too long for the model, the model unavailable)."""
    texts = await asyncio.to_thread(read_texts, examples)
    if not texts:
        raise ValueError("examples.jsonl holds no example")
    if await asyncio.to_thread(features_complete, features, len(texts)):
        return None
    dimension = embeddings.info(model).dimension
    partial = features.with_name(features.name + ".part")
    out = await asyncio.to_thread(np.lib.format.open_memmap, partial, "w+", np.float32, (len(texts), dimension))
    tokens, checked, complete = 0, time.monotonic(), False
    try:
        for start in range(0, len(texts), BATCH):
            if time.monotonic() - checked >= STOP_CHECK_EVERY_S:
                checked = time.monotonic()
                if await should_stop():
                    raise EmbeddingStopped()
            batch = texts[start:start + BATCH]
            embedded = await _embed(embeddings, model, batch, input_type, should_stop)
            await asyncio.to_thread(out.__setitem__, slice(start, start + len(batch)), embedded.vectors)
            tokens += embedded.prompt_tokens
            await on_progress(EmbeddingProgress(start + len(batch), len(texts), tokens))
        await asyncio.to_thread(out.flush)
        complete = True
    finally:
        del out  # the file's mapping closes
        if complete:
            await asyncio.to_thread(os.replace, partial, features)
        else:
            await asyncio.to_thread(partial.unlink, True)
    return tokens


async def _embed(embeddings, model: str, batch: list[str], input_type: str, should_stop):
    deadline = time.monotonic() + UNAVAILABLE_FOR_S
    while True:
        try:
            return await embeddings.embed(model, batch, input_type)
        except EngineUnavailable as exc:
            if time.monotonic() + exc.retry_after_s > deadline:
                raise
            await asyncio.sleep(exc.retry_after_s)
            if await should_stop():
                raise EmbeddingStopped() from None
