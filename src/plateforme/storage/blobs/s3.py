"""Blobs in an S3-compatible store (AWS S3, MinIO, Ceph, ...) through boto3.

A multipart upload becomes visible only when it completes, so `put` is atomic there too.
"""

import os
from collections.abc import Iterable, Iterator

from plateforme.storage.blobs.base import BlobNotFound, check_key

PART_SIZE = 8 << 20


class _ChunkReader:
    """A file-like view of an iterable of byte chunks, for boto3's upload_fileobj."""

    def __init__(self, chunks: Iterable[bytes]):
        self._chunks = iter(chunks)
        self._buffer = b""
        self.size = 0

    def read(self, n: int = -1) -> bytes:
        while n < 0 or len(self._buffer) < n:
            chunk = next(self._chunks, None)
            if chunk is None:
                break
            self._buffer += chunk
        out, self._buffer = (self._buffer, b"") if n < 0 else (self._buffer[:n], self._buffer[n:])
        self.size += len(out)
        return out


class S3BlobStore:
    def __init__(self, bucket: str, prefix: str = ""):
        import boto3
        from boto3.s3.transfer import TransferConfig

        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self._s3 = boto3.client("s3", endpoint_url=os.environ.get("PLATEFORME_S3_ENDPOINT_URL") or None)
        self._transfer = TransferConfig(multipart_threshold=PART_SIZE, multipart_chunksize=PART_SIZE)

    def _key(self, key: str) -> str:
        check_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def put(self, key: str, chunks: Iterable[bytes]) -> int:
        reader = _ChunkReader(chunks)
        self._s3.upload_fileobj(reader, self.bucket, self._key(key), Config=self._transfer)
        return reader.size

    def iter_bytes(self, key: str, chunk_size: int = 1 << 16) -> Iterator[bytes]:
        from botocore.exceptions import ClientError

        try:
            body = self._s3.get_object(Bucket=self.bucket, Key=self._key(key))["Body"]
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                raise BlobNotFound(key) from exc
            raise
        yield from body.iter_chunks(chunk_size)

    def delete(self, key: str) -> None:
        self._s3.delete_object(Bucket=self.bucket, Key=self._key(key))

    def exists(self, key: str) -> bool:
        from botocore.exceptions import ClientError

        try:
            self._s3.head_object(Bucket=self.bucket, Key=self._key(key))
            return True
        except ClientError:
            return False

    def sweep_partials(self) -> int:
        """Nothing to do: an interrupted multipart upload never becomes an object (the bucket's
        lifecycle rule for incomplete uploads reclaims its parts)."""
        return 0
