"""PDF: one page per PDF page, text from its text layer (pypdf; headings and paragraphs from font
sizes and positions, pdf_layout.py); a page without one (or with only a few characters: a scan)
is rendered (pypdfium2) and read by OCR."""

import io
import logging

import pypdf
from pypdf.errors import DependencyError, FileNotDecryptedError, PyPdfError

from plateforme.libraries.parsing.document import DocumentRejected, ParsedPage
from plateforme.libraries.parsing.normalize import normalize_text
from plateforme.libraries.parsing.ocr_pages import PageReader
from plateforme.libraries.parsing.pdf_layout import Line, markdown_pages, page_lines
from plateforme.ocr import render

log = logging.getLogger("plateforme.libraries.parsing")

# A page whose text layer has fewer non-blank characters than this is treated as a scan...
MIN_TEXT_CHARS = 16
# ...and so is one with an image and little text (a scan under a typed header or page number).
MIN_TEXT_CHARS_WITH_IMAGES = 200
# What pypdf raises on a broken file (its own errors, and Python's from half-parsed objects).
_BROKEN = (PyPdfError, ValueError, KeyError, TypeError, AttributeError, IndexError, OSError, RecursionError,
           AssertionError, ZeroDivisionError)


def _open(data: bytes) -> pypdf.PdfReader:
    try:
        reader = pypdf.PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            try:
                opened = reader.decrypt("")
            except DependencyError as exc:
                raise DocumentRejected(f"the PDF is encrypted with AES, which needs the `cryptography` package "
                                       f"to open even without a password: pip install cryptography ({exc})") from exc
            if opened == pypdf.PasswordType.NOT_DECRYPTED:
                raise DocumentRejected("the PDF is encrypted: remove its password (print or save it unprotected) "
                                       "and upload it again")
        len(reader.pages)  # reads the page tree: a broken one fails here
        return reader
    except DocumentRejected:
        raise
    except FileNotDecryptedError as exc:
        raise DocumentRejected("the PDF is encrypted: remove its password and upload it again") from exc
    except _BROKEN as exc:
        raise DocumentRejected(f"the PDF is corrupt: {type(exc).__name__}: {exc}") from exc


def _text_layer(page: pypdf.PageObject, number: int) -> tuple[str, list[Line] | None]:
    try:
        return page_lines(page)
    except Exception as exc:  # pypdf raises many kinds on broken content streams; OCR takes over
        log.warning("page %d: no text layer read (%s: %s); trying OCR", number, type(exc).__name__, exc)
        return "", None


def _has_images(page: pypdf.PageObject) -> bool:
    """Whether the page draws an image of its own (an image XObject in its resources)."""
    try:
        objects = page.get("/Resources", {}).get_object().get("/XObject", {}).get_object()
        return any(obj.get_object().get("/Subtype") == "/Image" for obj in objects.values())
    except Exception:  # broken resources: the text layer decides alone
        return False


def _ocr_reads_more(scanned: int, typed: int) -> bool:
    """Whether OCR found clearly more than the text layer (a logo read as noise does not count)."""
    return scanned > 0 if typed == 0 else scanned > typed * 1.25 + 8


def _meaningful(text: str) -> int:
    return sum(1 for ch in text if not ch.isspace())


def parse_pdf(data: bytes, ocr: PageReader, max_pages: int) -> list[ParsedPage]:
    reader = _open(data)
    count = len(reader.pages)
    if count > max_pages:
        raise DocumentRejected(f"the PDF has {count} pages, more than the {max_pages} this server ingests "
                               "(PLATEFORME_LIBRARY_MAX_PAGES): split it")
    layers, with_images = [], []
    for index in range(count):
        try:
            page = reader.pages[index]
        except _BROKEN as exc:
            raise DocumentRejected(f"the PDF is corrupt: page {index + 1}: {type(exc).__name__}: {exc}") from exc
        layers.append(_text_layer(page, index + 1))
        with_images.append(_has_images(page))
    structured = markdown_pages([lines or [] for _, lines in layers])
    pages, pdfium = [], None
    try:
        for index, (plain, lines) in enumerate(layers):
            text = normalize_text(structured[index] if lines is not None else plain)
            read_by_ocr = False
            if _meaningful(text) < (MIN_TEXT_CHARS_WITH_IMAGES if with_images[index] else MIN_TEXT_CHARS):
                if pdfium is None:
                    pdfium = _open_pdfium(data)
                image, dpi = _render(pdfium, index, ocr.config.dpi)
                scanned = normalize_text(ocr.read(image, dpi, index + 1))
                if _ocr_reads_more(_meaningful(scanned), _meaningful(text)):
                    text, read_by_ocr = scanned, True
            pages.append(ParsedPage(index + 1, text, read_by_ocr))
    finally:
        if pdfium is not None:
            render.close_pdf(pdfium)
    return pages


def _render(pdfium, index: int, dpi: int):
    try:
        return render.render_page(pdfium, index, dpi)
    except Exception as exc:  # pypdfium2.PdfiumError: the page's objects are broken
        raise DocumentRejected(f"the PDF is corrupt: page {index + 1} has no text layer and cannot be rendered "
                               f"for OCR ({exc})") from exc


def _open_pdfium(data: bytes):
    try:
        return render.open_pdf(data, password="")
    except Exception as exc:  # pypdfium2.PdfiumError and friends
        raise DocumentRejected(f"the PDF's scanned pages cannot be rendered for OCR: {exc}") from exc
