"""Uploaded files: metadata in the database, bytes in the blob store, scoped to a workspace."""
