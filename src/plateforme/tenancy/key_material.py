"""API key strings: `plat-<8-char visible prefix>-<secret>`, stored only as a SHA-256 hash.

The secret has 192 bits of entropy, so a plain SHA-256 (not a slow password hash) is the right
tool: guessing is infeasible and checking stays cheap on every request.
"""

import hashlib
import hmac
import secrets
import string
from dataclasses import dataclass

SCHEME = "plat"
_ALPHABET = string.ascii_lowercase + string.digits


@dataclass(frozen=True)
class KeyMaterial:
    prefix: str  # shown in listings, e.g. "plat-3kq9x0ab"
    plaintext: str  # shown once, at creation

    @property
    def secret_hash(self) -> str:
        return hash_key(self.plaintext)


def generate() -> KeyMaterial:
    visible = "".join(secrets.choice(_ALPHABET) for _ in range(8))
    prefix = f"{SCHEME}-{visible}"
    return KeyMaterial(prefix, f"{prefix}-{secrets.token_urlsafe(24)}")


def hash_key(plaintext: str) -> str:
    return hashlib.sha256(plaintext.encode()).hexdigest()


def prefix_of(plaintext: str) -> str | None:
    """The visible prefix of a well-formed key, or None."""
    parts = plaintext.split("-", 2)
    if len(parts) != 3 or parts[0] != SCHEME or len(parts[1]) != 8:
        return None
    return f"{parts[0]}-{parts[1]}"


def matches(plaintext: str, secret_hash: str) -> bool:
    return hmac.compare_digest(hash_key(plaintext), secret_hash)
