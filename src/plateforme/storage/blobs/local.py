"""Blobs as files under one directory, written to a temporary file then renamed into place."""

import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

from plateforme.storage.blobs.base import BlobNotFound, check_key


class LocalBlobStore:
    def __init__(self, root: str | Path):
        self.root = Path(root).expanduser()
        self.root.mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        return self.root / check_key(key)

    def put(self, key: str, chunks: Iterable[bytes]) -> int:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".partial-")
        size = 0
        try:
            with os.fdopen(fd, "wb") as out:
                for chunk in chunks:
                    out.write(chunk)
                    size += len(chunk)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return size

    def iter_bytes(self, key: str, chunk_size: int = 1 << 16) -> Iterator[bytes]:
        try:
            handle = open(self._path(key), "rb")
        except FileNotFoundError as exc:
            raise BlobNotFound(key) from exc
        with handle:
            while chunk := handle.read(chunk_size):
                yield chunk

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def sweep_partials(self) -> int:
        """Remove temporary files left by a crash during `put`; return how many."""
        removed = 0
        for tmp in self.root.rglob(".partial-*"):
            tmp.unlink(missing_ok=True)
            removed += 1
        return removed
