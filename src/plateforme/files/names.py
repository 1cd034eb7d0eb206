"""Filenames from uploads, made safe to store and to send back in a header."""

import re
import unicodedata

MAX_LENGTH = 200
_UNSAFE = re.compile(r'[\x00-\x1f\x7f"\\/:*?<>|;]+')


def sanitize_filename(name: str | None) -> str:
    """The last path component of `name`, without control or path characters; never empty."""
    name = unicodedata.normalize("NFC", name or "")
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = _UNSAFE.sub("_", name).strip(" .")
    if len(name) > MAX_LENGTH:
        stem, dot, ext = name.rpartition(".")
        name = (stem[: MAX_LENGTH - len(ext) - 1] + dot + ext) if dot and len(ext) < 16 else name[:MAX_LENGTH]
    return name or "upload"
