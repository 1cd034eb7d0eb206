"""Fast, single-pass reads of a GGUF file's header: selected metadata, token ids, tensor names.

gguf.GGUFReader maps the whole file and materialises every field and tensor (tens of thousands
of numpy views for a vocabulary), which takes seconds and holds the GIL. The gateway needs a few
scalars and the ids of a few token texts; the adapter writer needs a few scalars and which
weights exist. So the header is scanned once, skipping every value nobody asked for. Layout per
the GGUF spec (version 2 and later): magic, version, tensor count, KV count, the (key, type,
value) triples, then per tensor its name, number of dimensions, dimensions, type and data offset.
"""

import struct
from dataclasses import dataclass
from pathlib import Path

_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}
_STRING, _ARRAY = 8, 9
TOKENS_KEY = "tokenizer.ggml.tokens"


class GgufHeaderError(ValueError):
    """Not a GGUF file this reader knows, or one that ends inside its header."""


@dataclass(frozen=True)
class GgufHeader:
    values: dict  # the wanted scalar and string metadata found in the file
    tensor_names: frozenset[str]


class _Stream:
    def __init__(self, handle, path: Path):
        self.handle, self.path = handle, path

    def _read(self, size: int) -> bytes:
        data = self.handle.read(size)
        if len(data) != size:
            raise GgufHeaderError(f"{self.path} ends inside its GGUF header (truncated file?)")
        return data

    def unpack(self, fmt: str):
        return struct.unpack(fmt, self._read(struct.calcsize(fmt)))[0]

    def string(self) -> bytes:
        return self._read(self.unpack("<Q"))

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
        elif kind in _SCALARS:
            self.handle.seek(struct.calcsize(_SCALARS[kind]), 1)
        else:
            raise GgufHeaderError(f"{self.path}: unknown GGUF value type {kind} (not a GGUF file this reader knows)")

    def begin(self) -> tuple[int, int]:
        """Check the magic and version; (tensor count, KV count)."""
        if self.handle.read(4) != b"GGUF":
            raise GgufHeaderError(f"{self.path} is not a GGUF file")
        version = self.unpack("<I")
        if version < 2:
            raise GgufHeaderError(f"{self.path}: GGUF version {version} is too old (version 2 or later is needed)")
        return self.unpack("<Q"), self.unpack("<Q")

    def value_if_wanted(self, key: str, kind: int, keys: set[str], values: dict) -> bool:
        """Read the value of `key` into `values` when it is a wanted scalar or string."""
        if key in keys and kind in _SCALARS:
            values[key] = self.unpack(_SCALARS[kind])
        elif key in keys and kind == _STRING:
            values[key] = self.string().decode("utf-8", "replace")
        else:
            return False
        return True


def read_gguf_metadata(path: Path, keys: set[str], token_texts: set[str] = frozenset()) -> tuple[dict, dict]:
    """(values of the scalar `keys` present, {token text: id} for the `token_texts` in the vocabulary)."""
    wanted_tokens = {t.encode() for t in token_texts}
    values: dict = {}
    found: dict[str, int] = {}
    with open(path, "rb", buffering=1 << 20) as handle:
        stream = _Stream(handle, Path(path))
        _, kv_count = stream.begin()
        for _ in range(kv_count):
            key = stream.string().decode("utf-8", "replace")
            kind = stream.unpack("<I")
            if stream.value_if_wanted(key, kind, keys, values):
                continue
            if key == TOKENS_KEY and kind == _ARRAY and wanted_tokens:
                inner, count = stream.unpack("<I"), stream.unpack("<Q")
                for index in range(count):
                    text = stream.string() if inner == _STRING else stream.skip_value(inner)
                    if text in wanted_tokens:
                        found[text.decode()] = index
            else:
                stream.skip_value(kind)
    return values, found


def read_gguf_header(path: Path, keys: set[str]) -> GgufHeader:
    """The values of the scalar or string metadata `keys` present in `path`, and its tensors' names."""
    values: dict = {}
    names: set[str] = set()
    with open(path, "rb", buffering=1 << 20) as handle:
        stream = _Stream(handle, Path(path))
        tensor_count, kv_count = stream.begin()
        for _ in range(kv_count):
            key = stream.string().decode("utf-8", "replace")
            kind = stream.unpack("<I")
            if not stream.value_if_wanted(key, kind, keys, values):
                stream.skip_value(kind)
        for _ in range(tensor_count):
            names.add(stream.string().decode("utf-8", "replace"))
            dims = stream.unpack("<I")
            handle.seek(8 * dims + 4 + 8, 1)  # the dimensions (u64 each), the type (u32), the offset (u64)
    return GgufHeader(values, frozenset(names))
