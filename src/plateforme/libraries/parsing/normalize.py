"""Text normalisation, applied to every page before any offset is computed."""

import re
import unicodedata

# C0 controls but tab and newline, DEL, and C1 controls; form feeds and vertical tabs become newlines.
_CONTROLS = re.compile(r"[\x00-\x08\x0e-\x1f\x7f-\x9f]")
_BLANK_RUNS = re.compile(r"\n{3,}")
_TRAILING_SPACE = re.compile(r"[ \t\u00a0]+\n")
# Typographic ligatures (ﬁ, ﬂ, ﬀ...) PDFs often carry: spelled out, so that words match.
_LIGATURES = {code: unicodedata.normalize("NFKC", chr(code)) for code in range(0xFB00, 0xFB07)}


def normalize_text(text: str) -> str:
    """NFC; ligatures spelled out; no NUL or other control characters; \\n line ends; no trailing
    spaces; at most one blank line in a row; no leading or trailing blank space."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\f", "\n").replace("\v", "\n")
    text = text.replace("\u2028", "\n").replace("\u2029", "\n\n").replace("\ufeff", "")
    text = _CONTROLS.sub("", unicodedata.normalize("NFC", text.translate(_LIGATURES)))
    text = _TRAILING_SPACE.sub("\n", text + "\n")
    return _BLANK_RUNS.sub("\n\n", text).strip()
