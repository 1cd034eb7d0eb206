"""Identifiers for stored objects: a type prefix and random hex (ws_..., user_..., key_...)."""

import secrets
from datetime import UTC, datetime


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(12)}"


def utcnow() -> datetime:
    return datetime.now(UTC)
