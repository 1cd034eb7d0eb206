"""Blob storage: a local directory by default, any S3-compatible store as an option."""

from plateforme.storage.blobs.base import BlobNotFound, BlobStore, check_key
from plateforme.storage.blobs.local import LocalBlobStore


def open_blob_store(url: str) -> BlobStore:
    """`url` is a directory path, `file:///dir`, or `s3://bucket[/prefix]` (S3 settings from the
    standard AWS_* environment variables plus PLATEFORME_S3_ENDPOINT_URL for non-AWS stores)."""
    if url.startswith("s3://"):
        from plateforme.storage.blobs.s3 import S3BlobStore

        bucket, _, prefix = url[len("s3://"):].partition("/")
        return S3BlobStore(bucket, prefix)
    return LocalBlobStore(url.removeprefix("file://"))


__all__ = ["BlobNotFound", "BlobStore", "LocalBlobStore", "check_key", "open_blob_store"]
