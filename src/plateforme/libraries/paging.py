"""Keyset page tokens for listings ordered newest first: an opaque token names the last row sent."""

from datetime import datetime

from sqlalchemy import ColumnElement, and_, or_

from plateforme.libraries.errors import LibraryError
from plateforme.storage import page_tokens


def decode_token(token: str) -> tuple[datetime, str]:
    try:
        return page_tokens.decode_token(token)
    except ValueError:
        raise LibraryError("page_token is not a token this server issued: pass back a response's "
                           "next_page_token unchanged (or leave it out for the first page).", 422,
                           "page_token") from None


def after(created_column, id_column, token: str) -> ColumnElement[bool]:
    """Rows after the token's row in (created_at desc, id desc) order."""
    created_at, row_id = decode_token(token)
    return or_(created_column < created_at, and_(created_column == created_at, id_column < row_id))
