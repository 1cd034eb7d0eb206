"""PDF pages as images (pypdfium2), for OCR. PDFium is not thread-safe: every call into it here
holds one process-wide lock (the OCR that follows runs outside it)."""

import threading

import pypdfium2
from PIL import Image

PDFIUM_LOCK = threading.Lock()


def open_pdf(data: bytes, password: str | None = None) -> pypdfium2.PdfDocument:
    with PDFIUM_LOCK:
        return pypdfium2.PdfDocument(data, password=password)


def render_page(pdf: pypdfium2.PdfDocument, index: int, dpi: int) -> Image.Image:
    """Page `index` (0-based) rendered at `dpi` as an RGB image."""
    with PDFIUM_LOCK:
        page = pdf[index]
        try:
            bitmap = page.render(scale=dpi / 72)
            try:
                return bitmap.to_pil().convert("RGB")
            finally:
                bitmap.close()
        finally:
            page.close()


def page_size_pixels(pdf: pypdfium2.PdfDocument, index: int, dpi: int) -> tuple[int, int]:
    """(width, height) page `index` would have rendered at `dpi`."""
    with PDFIUM_LOCK:
        page = pdf[index]
        try:
            width, height = page.get_size()
        finally:
            page.close()
    return round(width * dpi / 72), round(height * dpi / 72)


def page_text(pdf: pypdfium2.PdfDocument, index: int) -> str:
    """The text layer of page `index` ('' when it has none)."""
    with PDFIUM_LOCK:
        page = pdf[index]
        try:
            textpage = page.get_textpage()
            try:
                return textpage.get_text_bounded()
            finally:
                textpage.close()
        finally:
            page.close()


def close_pdf(pdf: pypdfium2.PdfDocument) -> None:
    with PDFIUM_LOCK:
        pdf.close()
