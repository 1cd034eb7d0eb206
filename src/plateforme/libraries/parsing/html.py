"""HTML: the page's main content (trafilatura) as Markdown with headings; when it finds none
(short pages, unusual markup), all the page's text."""

import trafilatura

from plateforme.libraries.parsing.text import decode_text


def parse_html_text(data: bytes) -> str:
    html = decode_text(data)
    main = trafilatura.extract(html, output_format="markdown", include_formatting=True, include_tables=True,
                               include_links=False, include_images=False, include_comments=False,
                               favor_recall=True, deduplicate=False)
    if main and main.strip():
        return main
    return trafilatura.html2txt(html) or ""
