"""Keyset page tokens for listings ordered newest first: an opaque token names the last row sent."""

import base64
import json
from datetime import datetime

from sqlalchemy import ColumnElement, and_, or_

from plateforme.libraries.errors import LibraryError
from plateforme.tenancy.ids import as_utc


def encode_token(created_at: datetime, row_id: str) -> str:
    raw = json.dumps([as_utc(created_at).isoformat(), row_id], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_token(token: str) -> tuple[datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        created, row_id = json.loads(raw)
        return as_utc(datetime.fromisoformat(created)), str(row_id)
    except (ValueError, TypeError, UnicodeDecodeError):
        raise LibraryError("page_token is not a token this server issued: pass back a response's "
                           "next_page_token unchanged (or leave it out for the first page).", 422,
                           "page_token") from None


def after(created_column, id_column, token: str) -> ColumnElement[bool]:
    """Rows after the token's row in (created_at desc, id desc) order."""
    created_at, row_id = decode_token(token)
    return or_(created_column < created_at, and_(created_column == created_at, id_column < row_id))
