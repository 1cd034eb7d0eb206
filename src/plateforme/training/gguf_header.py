"""The base GGUF's header as the adapter writer needs it: a few scalar metadata and the tensor names.

gguf.GGUFReader maps the whole file and builds numpy views of every field and tensor (the
vocabulary alone is tens of thousands of them): seconds per adapter written. The writer only
needs the architecture, a few head counts and which weights exist, so this reads the header once,
skipping every value it does not want. Layout per the GGUF spec (version 2 and later): magic,
version, tensor count, KV count, the (key, type, value) triples, then per tensor its name, number
of dimensions, dimensions, type and data offset.
"""

import struct
from dataclasses import dataclass
from pathlib import Path

_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}
_STRING, _ARRAY = 8, 9


class GgufHeaderError(ValueError):
    pass


@dataclass(frozen=True)
class GgufHeader:
    values: dict  # the wanted scalar and string metadata found in the file
    tensor_names: frozenset[str]


class _Reader:
    def __init__(self, handle, path: Path):
        self.handle, self.path = handle, path

    def unpack(self, fmt: str):
        size = struct.calcsize(fmt)
        data = self.handle.read(size)
        if len(data) != size:
            raise GgufHeaderError(f"{self.path} ends inside its GGUF header (truncated file?)")
        return struct.unpack(fmt, data)[0]

    def string(self) -> str:
        length = self.unpack("<Q")
        data = self.handle.read(length)
        if len(data) != length:
            raise GgufHeaderError(f"{self.path} ends inside its GGUF header (truncated file?)")
        return data.decode("utf-8", "replace")

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


def read_gguf_header(path: Path, keys: set[str]) -> GgufHeader:
    """The values of the scalar or string metadata `keys` present in `path`, and its tensors' names."""
    values: dict = {}
    names: set[str] = set()
    with open(path, "rb", buffering=1 << 20) as handle:
        reader = _Reader(handle, Path(path))
        if handle.read(4) != b"GGUF":
            raise GgufHeaderError(f"{path} is not a GGUF file")
        version = reader.unpack("<I")
        if version < 2:
            raise GgufHeaderError(f"{path}: GGUF version {version} is too old (version 2 or later is needed)")
        tensor_count, kv_count = reader.unpack("<Q"), reader.unpack("<Q")
        for _ in range(kv_count):
            key = reader.string()
            kind = reader.unpack("<I")
            if key in keys and kind in _SCALARS:
                values[key] = reader.unpack(_SCALARS[kind])
            elif key in keys and kind == _STRING:
                values[key] = reader.string()
            else:
                reader.skip_value(kind)
        for _ in range(tensor_count):
            names.add(reader.string())
            dims = reader.unpack("<I")
            handle.seek(8 * dims + 4 + 8, 1)  # the dimensions (u64 each), the type (u32), the offset (u64)
    return GgufHeader(values, frozenset(names))
