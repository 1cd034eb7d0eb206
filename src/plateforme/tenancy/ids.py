"""Identifiers for stored objects: a type prefix and random hex (ws_..., user_..., key_...)."""

import secrets
from datetime import UTC, datetime


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(12)}"


def utcnow() -> datetime:
    return datetime.now(UTC)


def as_utc(moment: datetime | None) -> datetime | None:
    """`moment` as an aware UTC datetime: one with an offset is converted, a naive one is taken as UTC
    (what SQLite hands back, and what a caller sending no offset means).
    ValueError when the converted time falls outside the years 1 to 9999."""
    if moment is None:
        return None
    if moment.tzinfo is None or moment.utcoffset() is None:
        return moment.replace(tzinfo=UTC)
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        raise ValueError(f"{moment.isoformat()} is out of range once converted to UTC") from None
