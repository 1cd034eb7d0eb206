"""PDF pages as images (pypdfium2), for OCR. PDFium is not thread-safe: every call into it here
holds one process-wide lock (the OCR that follows runs outside it)."""

import math
import threading

import pypdfium2
from PIL import Image

PDFIUM_LOCK = threading.Lock()
# Largest page image rendered (pixels: 60 M is an A3 page at 400 dpi, 180 MB in RGB).
MAX_PIXELS = 60_000_000


def open_pdf(data: bytes, password: str | None = None) -> pypdfium2.PdfDocument:
    with PDFIUM_LOCK:
        return pypdfium2.PdfDocument(data, password=password)


def _fitting_dpi(width_pt: float, height_pt: float, dpi: int) -> int:
    """`dpi`, lowered where the page is so large that its image would pass MAX_PIXELS."""
    pixels = (width_pt * dpi / 72) * (height_pt * dpi / 72)
    if pixels <= MAX_PIXELS:
        return dpi
    return max(1, int(dpi * math.sqrt(MAX_PIXELS / pixels)))


def render_page(pdf: pypdfium2.PdfDocument, index: int, dpi: int) -> tuple[Image.Image, int]:
    """Page `index` (0-based) as an RGB image, and the resolution it was rendered at: `dpi`, or
    less for a page so large that its image would pass MAX_PIXELS."""
    with PDFIUM_LOCK:
        page = pdf[index]
        try:
            dpi = _fitting_dpi(*page.get_size(), dpi)
            bitmap = page.render(scale=dpi / 72)
            try:
                return bitmap.to_pil().convert("RGB"), dpi
            finally:
                bitmap.close()
        finally:
            page.close()


def page_size_pixels(pdf: pypdfium2.PdfDocument, index: int, dpi: int) -> tuple[int, int, int]:
    """(width, height, dpi) page `index` would have rendered at `dpi` (see render_page)."""
    with PDFIUM_LOCK:
        page = pdf[index]
        try:
            width, height = page.get_size()
        finally:
            page.close()
    dpi = _fitting_dpi(width, height, dpi)
    return round(width * dpi / 72), round(height * dpi / 72), dpi


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
