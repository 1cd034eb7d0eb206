"""Filenames from uploads, made safe to store and to send back in a header."""

import re
import unicodedata
from urllib.parse import quote

MAX_LENGTH = 200
_UNSAFE = re.compile(r'[\x00-\x1f\x7f"\\/:*?<>|;]+')
_NOT_PRINTABLE_ASCII = re.compile(r'[^\x20-\x7e]|["\\%]')


def sanitize_filename(name: str | None) -> str:
    """The last path component of `name`, without control or path characters; never empty."""
    name = unicodedata.normalize("NFC", name or "")
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = _UNSAFE.sub("_", name).strip(" .")
    if len(name) > MAX_LENGTH:
        stem, dot, ext = name.rpartition(".")
        name = (stem[: MAX_LENGTH - len(ext) - 1] + dot + ext) if dot and len(ext) < 16 else name[:MAX_LENGTH]
    return name or "upload"


def ascii_fallback(name: str) -> str:
    """`name` in printable ASCII for clients that ignore `filename*`: accents dropped (é -> e), other
    characters (CJK, emoji, bidi and line-separator controls), quotes, backslashes and '%' removed."""
    folded = _NOT_PRINTABLE_ASCII.sub("", unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode())
    stem, dot, ext = folded.rpartition(".")
    if not dot:
        stem, ext = folded, ""
    stem, ext = stem.strip(" ."), ext.strip(" ")
    return (stem if stem.strip("_-") else "download") + (f".{ext}" if ext else "")


def content_disposition(name: str) -> str:
    """An RFC 6266 attachment header for `name`: an ASCII `filename` and the exact UTF-8 `filename*`
    (RFC 8187), so any name, in any script, can be sent in an HTTP header."""
    return f"attachment; filename=\"{ascii_fallback(name)}\"; filename*=UTF-8''{quote(name, safe='')}"
