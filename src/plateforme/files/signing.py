"""HMAC-signed, expiring download links: a link works without an API key until it expires."""

import hashlib
import hmac
import os
import secrets
import time
from pathlib import Path

KEY_FILE = "url-signing.key"


def load_signing_key(configured: str | None, data_dir: Path) -> bytes:
    """The configured key, else one generated once and kept (mode 0600) in the data directory.
    Several gateway nodes sharing one database must share PLATEFORME_URL_SIGNING_KEY."""
    if configured:
        return configured.encode()
    path = Path(data_dir) / KEY_FILE
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_hex(32))
    return path.read_text().strip().encode()


class UrlSigner:
    def __init__(self, key: bytes):
        self._key = key

    def _mac(self, file_id: str, expires: int) -> str:
        return hmac.new(self._key, f"{file_id}:{expires}".encode(), hashlib.sha256).hexdigest()

    def sign(self, file_id: str, expiry_hours: int) -> tuple[int, str]:
        expires = int(time.time()) + expiry_hours * 3600
        return expires, self._mac(file_id, expires)

    def verify(self, file_id: str, expires: int, signature: str) -> bool:
        """Constant-time check of a link's signature; False (never an error) for any string a caller sends."""
        presented = signature.encode("utf-8", "surrogatepass")
        return expires > time.time() and hmac.compare_digest(self._mac(file_id, expires).encode(), presented)
