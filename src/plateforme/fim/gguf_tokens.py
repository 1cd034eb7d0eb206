"""Fill-in-the-middle tokens of a GGUF model (StarCoder style: <fim_prefix>, <fim_suffix>, <fim_middle>).

Read once per file from its metadata (`tokenizer.ggml.fim_{pre,suf,mid}_token_id`); GGUFs written
before those keys existed are recognised by the token texts, as llama.cpp itself does.
"""

import functools
from dataclasses import dataclass
from pathlib import Path

import gguf

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


def _scalar(reader: gguf.GGUFReader, key: str):
    field = reader.fields.get(key)
    return None if field is None else field.parts[field.data[0]].tolist()[0]


@functools.lru_cache(maxsize=16)
def gguf_fim_tokens(path: Path) -> FimTokens | None:
    """The model's FIM token ids, or None when it has none. Slow (reads the file): call once."""
    reader = gguf.GGUFReader(path)
    ids = [_scalar(reader, key) for key in _KEYS]
    if None in ids:
        field = reader.fields.get("tokenizer.ggml.tokens")
        texts = {bytes(field.parts[i]).decode("utf-8", "replace"): n for n, i in enumerate(field.data)} if field else {}
        for slot, names in enumerate(_NAMES):
            if ids[slot] is None:
                ids[slot] = next((texts[name] for name in names if name in texts), None)
    if None in ids:
        return None
    bos = _scalar(reader, "tokenizer.ggml.bos_token_id") if _scalar(reader, "tokenizer.ggml.add_bos_token") else None
    return FimTokens(*ids, bos=bos)
