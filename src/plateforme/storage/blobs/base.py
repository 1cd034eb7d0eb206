"""The blob-store interface every backend implements."""

import re
from collections.abc import Iterable, Iterator
from typing import Protocol

# Keys are made by the platform (workspace/file ids), never from user input; anything else is refused.
_KEY = re.compile(r"^[A-Za-z0-9_-]+(/[A-Za-z0-9_.-]+)*$")


class BlobNotFound(KeyError):
    pass


def check_key(key: str) -> str:
    if not _KEY.match(key) or ".." in key:
        raise ValueError(f"invalid blob key {key!r}")
    return key


class BlobStore(Protocol):
    def put(self, key: str, chunks: Iterable[bytes]) -> int:
        """Store the bytes under `key` atomically (all or nothing); return their size."""

    def iter_bytes(self, key: str, chunk_size: int = 1 << 16) -> Iterator[bytes]:
        """The stored bytes; BlobNotFound if there are none."""

    def delete(self, key: str) -> None:
        """Remove `key`; no error if it is already gone."""

    def exists(self, key: str) -> bool: ...

    def sweep_partials(self) -> int:
        """Remove what an interrupted `put` left behind; return how many pieces."""
