"""Plain text and Markdown: decoded (UTF-8, then fallbacks), kept as they are (Markdown headings
are recognised by chunking); binary data is refused."""

import codecs

from plateforme.libraries.parsing.detect import SUPPORTED
from plateforme.libraries.parsing.document import DocumentRejected

_BOMS = ((codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"), (codecs.BOM_UTF8, "utf-8-sig"),
         (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))
# Share of control characters (other than whitespace) above which decoded "text" is binary data.
_MAX_CONTROL_SHARE = 0.01


def _controls(text: str) -> int:
    return sum(1 for ch in text if (ord(ch) < 32 and ch not in "\t\n\r\f\v") or 0x7f <= ord(ch) < 0xa0)


def decode_text(data: bytes) -> str:
    """The text of `data`: by its BOM, as UTF-8, as Windows-1252, then as Latin-1; DocumentRejected
    when it is binary data rather than text."""
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            try:
                return data.decode(encoding)
            except UnicodeDecodeError as exc:
                raise DocumentRejected(f"the text file has a {encoding} byte-order mark but is not {encoding}: "
                                       f"{exc}") from exc
    for encoding in ("utf-8", "cp1252", "latin-1"):
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError:
            continue
        if _controls(text) <= max(4, _MAX_CONTROL_SHARE * len(text)):
            return text
    raise DocumentRejected(f"unsupported type: binary data, not text; supported: {SUPPORTED}")
