"""A fast, single-pass read of selected GGUF metadata.

gguf.GGUFReader materialises every field (tens of thousands of numpy views for a vocabulary),
which takes seconds and holds the GIL; the gateway only needs a few scalars and the ids of a few
token texts, so it scans the metadata once and skips everything else. Layout per the GGUF spec:
magic, version, tensor count, KV count, then (key, type, value) triples.
"""

import struct
from pathlib import Path

_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}
_STRING, _ARRAY = 8, 9
TOKENS_KEY = "tokenizer.ggml.tokens"


class _Stream:
    def __init__(self, handle):
        self.handle = handle

    def unpack(self, fmt: str):
        size = struct.calcsize(fmt)
        return struct.unpack(fmt, self.handle.read(size))[0]

    def string(self) -> bytes:
        return self.handle.read(self.unpack("<Q"))

    def skip_value(self, kind: int) -> None:
        if kind == _STRING:
            self.handle.seek(self.unpack("<Q"), 1)
        elif kind == _ARRAY:
            inner, count = self.unpack("<I"), self.unpack("<Q")
            if inner in _SCALARS:
                self.handle.seek(struct.calcsize(_SCALARS[inner]) * count, 1)
            else:
                for _ in range(count):
                    self.skip_value(inner)
        else:
            self.handle.seek(struct.calcsize(_SCALARS[kind]), 1)


def read_gguf_metadata(path: Path, keys: set[str], token_texts: set[str] = frozenset()) -> tuple[dict, dict]:
    """(values of the scalar `keys` present, {token text: id} for the `token_texts` in the vocabulary)."""
    wanted_tokens = {t.encode() for t in token_texts}
    values: dict = {}
    found: dict[str, int] = {}
    with open(path, "rb", buffering=1 << 20) as handle:
        stream = _Stream(handle)
        if handle.read(4) != b"GGUF":
            raise ValueError(f"{path} is not a GGUF file")
        version = stream.unpack("<I")
        if version < 2:
            raise ValueError(f"{path}: GGUF version {version} is too old")
        stream.unpack("<Q")  # tensor count
        for _ in range(stream.unpack("<Q")):
            key = stream.string().decode("utf-8", "replace")
            kind = stream.unpack("<I")
            if key in keys and kind in _SCALARS:
                values[key] = stream.unpack(_SCALARS[kind])
            elif key in keys and kind == _STRING:
                values[key] = stream.string().decode("utf-8", "replace")
            elif key == TOKENS_KEY and kind == _ARRAY and wanted_tokens:
                inner, count = stream.unpack("<I"), stream.unpack("<Q")
                for index in range(count):
                    text = stream.string() if inner == _STRING else stream.skip_value(inner)
                    if text in wanted_tokens:
                        found[text.decode()] = index
            else:
                stream.skip_value(kind)
    return values, found
