"""Opaque keyset page tokens for listings ordered newest first: a token names the last row sent
by its creation time and id. Each listing turns a bad token into its own error."""

import base64
import json
from datetime import datetime

from plateforme.tenancy.ids import as_utc


def encode_token(created_at: datetime, row_id: str) -> str:
    raw = json.dumps([as_utc(created_at).isoformat(), row_id], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_token(token: str) -> tuple[datetime, str]:
    """(created_at, id) of the token's row; ValueError for a token this server did not issue."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        created, row_id = json.loads(raw)
        return as_utc(datetime.fromisoformat(created)), str(row_id)
    except (ValueError, TypeError, UnicodeDecodeError):
        raise ValueError(f"not a page token of this server: {token!r}") from None
