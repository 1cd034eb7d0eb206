"""Fill-in-the-middle tokens of a GGUF model (StarCoder style: <fim_prefix>, <fim_suffix>, <fim_middle>).

Read once per file from its metadata (`tokenizer.ggml.fim_{pre,suf,mid}_token_id`); GGUFs written
before those keys existed are recognised by the token texts, as llama.cpp itself does.
"""

import functools
from dataclasses import dataclass
from pathlib import Path

from plateforme.models.gguf_metadata import read_gguf_metadata

_KEYS = ("tokenizer.ggml.fim_pre_token_id", "tokenizer.ggml.fim_suf_token_id", "tokenizer.ggml.fim_mid_token_id")
_NAMES = (
    ("<fim_prefix>", "<|fim_prefix|>", "<fim-prefix>"),
    ("<fim_suffix>", "<|fim_suffix|>", "<fim-suffix>"),
    ("<fim_middle>", "<|fim_middle|>", "<fim-middle>"),
)


@dataclass(frozen=True)
class FimTokens:
    prefix: int
    suffix: int
    middle: int
    bos: int | None  # prepended when the model adds BOS to its prompts


@functools.lru_cache(maxsize=16)
def gguf_fim_tokens(path: Path) -> FimTokens | None:
    """The model's FIM token ids, or None when it has none (one fast pass over the metadata)."""
    keys = {*_KEYS, "tokenizer.ggml.bos_token_id", "tokenizer.ggml.add_bos_token"}
    values, texts = read_gguf_metadata(path, keys, {name for names in _NAMES for name in names})
    ids = [values.get(key) for key in _KEYS]
    for slot, names in enumerate(_NAMES):
        if ids[slot] is None:
            ids[slot] = next((texts[name] for name in names if name in texts), None)
    if None in ids:
        return None
    bos = values.get("tokenizer.ggml.bos_token_id") if values.get("tokenizer.ggml.add_bos_token") else None
    return FimTokens(*ids, bos=bos)
