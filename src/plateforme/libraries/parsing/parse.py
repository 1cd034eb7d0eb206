"""parse_document: a file's bytes into pages of normalised text (pure, synchronous, CPU-bound:
the ingestion runner calls it in a worker process)."""

from plateforme.libraries.parsing.detect import detect_format
from plateforme.libraries.parsing.docx import parse_docx_pages
from plateforme.libraries.parsing.document import DocumentRejected, ParsedDocument, ParsedPage
from plateforme.libraries.parsing.html import parse_html_text
from plateforme.libraries.parsing.image import parse_image
from plateforme.libraries.parsing.normalize import normalize_text
from plateforme.libraries.parsing.ocr_pages import PageReader
from plateforme.libraries.parsing.pdf import parse_pdf
from plateforme.libraries.parsing.text import decode_text
from plateforme.ocr.config import OCRConfig


def _pages_of(texts: list[str], max_pages: int, what: str) -> list[ParsedPage]:
    if len(texts) > max_pages:
        raise DocumentRejected(f"the {what} has {len(texts)} pages, more than the {max_pages} this server ingests "
                               "(PLATEFORME_LIBRARY_MAX_PAGES): split it")
    return [ParsedPage(number, normalize_text(text), False) for number, text in enumerate(texts, 1)]


def parse_document(data: bytes, filename: str, mime_type: str | None, ocr: OCRConfig,
                   max_pages: int) -> ParsedDocument:
    """The document's pages; DocumentRejected (its message is the user-facing reason) when it is
    empty, corrupt, encrypted, of an unsupported type or has more than max_pages pages."""
    kind = detect_format(data, filename, mime_type)
    reader = PageReader(ocr)
    if kind == "pdf":
        pages = parse_pdf(data, reader, max_pages)
    elif kind == "image":
        pages = parse_image(data, reader, max_pages)
    elif kind == "docx":
        pages = _pages_of(parse_docx_pages(data), max_pages, "DOCX")
    elif kind == "html":
        pages = _pages_of([parse_html_text(data)], max_pages, "HTML page")
    else:  # markdown, text
        pages = _pages_of([decode_text(data)], max_pages, "text")
    return ParsedDocument(pages, kind)
