"""HTML: the page's main content (trafilatura) as Markdown with headings; when it finds none
(short pages, unusual markup), all the page's text. The page's declared charset (<meta charset>,
http-equiv, XML declaration) is honoured; without one, text decoding's fallbacks apply."""

import codecs
import re

import trafilatura

from plateforme.libraries.parsing.text import decode_text

_DECLARED = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]+)|<\?xml[^>]+encoding\s*=\s*["']([A-Za-z0-9_.:-]+)""",
                       re.IGNORECASE)


def _decode(data: bytes) -> str:
    if not data.startswith((codecs.BOM_UTF8, codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        match = _DECLARED.search(data[:4096])
        if match is not None:
            name = (match.group(1) or match.group(2)).decode("ascii")
            try:
                # As browsers do (WHATWG): a page labelled Latin-1 or ASCII is windows-1252.
                codec = codecs.lookup(name).name
                codec = "cp1252" if codec in ("latin-1", "iso8859-1", "ascii") else codec
                return data.decode(codec)
            except (LookupError, UnicodeDecodeError):
                pass  # a wrong label: guess as for plain text
    return decode_text(data)


def parse_html_text(data: bytes) -> str:
    html = _decode(data)
    main = trafilatura.extract(html, output_format="markdown", include_formatting=True, include_tables=True,
                               include_links=False, include_images=False, include_comments=False,
                               favor_recall=True, deduplicate=False)
    if main and main.strip():
        return main
    return trafilatura.html2txt(html) or ""
