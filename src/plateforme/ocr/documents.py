"""OCR of a whole document (a PDF or an image) for POST /v1/ocr: each selected page's Markdown
and dimensions. A PDF page with a text layer gives its text directly; the others are rendered and
read by the engine. Synchronous: the caller runs it in a thread."""

from dataclasses import dataclass

import pypdfium2
from PIL import ImageSequence

from plateforme.ocr import render
from plateforme.ocr.engine import OCREngine
from plateforme.ocr.errors import OCRInputError
from plateforme.ocr.images import ImageUnreadable, check_size, image_dpi, open_image
from plateforme.ocr.pages import select_pages

# A PDF page whose text layer has fewer non-blank characters than this is read by OCR.
MIN_TEXT_CHARS = 16
_IMAGE_MAGIC = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"II*\x00", b"MM\x00*", b"GIF87a", b"GIF89a", b"BM")
READABLE = "a PDF or an image (PNG, JPEG, TIFF, GIF, BMP, WebP)"


@dataclass(frozen=True)
class OCRPageResult:
    index: int       # 0-based
    markdown: str
    width: int
    height: int
    dpi: int
    ocr: bool        # False: the PDF's own text layer


def document_kind(data: bytes) -> str:
    """'pdf' or 'image', from the bytes; OCRInputError for anything else."""
    if not data:
        raise OCRInputError("the document is empty")
    if b"%PDF-" in data[:1024]:
        return "pdf"
    if data.startswith(_IMAGE_MAGIC) or (data[:4] == b"RIFF" and data[8:12] == b"WEBP"):
        return "image"
    raise OCRInputError(f"the document is not {READABLE}; DOCX, HTML and text files can be added to a "
                        "library (/v1/libraries/{id}/documents), which reads them without OCR")


def _text_of(pdf, index: int) -> str:
    text = render.page_text(pdf, index).replace("\r\n", "\n").replace("\r", "\n").strip()
    return text if sum(not ch.isspace() for ch in text) >= MIN_TEXT_CHARS else ""


def _ocr_pdf(data: bytes, pages, engine: OCREngine, dpi: int, max_pages: int) -> list[OCRPageResult]:
    try:
        pdf = render.open_pdf(data)
    except pypdfium2.PdfiumError as exc:
        if "password" in str(exc).lower():
            raise OCRInputError("the PDF is encrypted: remove its password and send it again") from exc
        raise OCRInputError(f"the PDF is corrupt: {exc}") from exc
    try:
        count = len(pdf)
        if count > max_pages:
            raise OCRInputError(f"the PDF has {count} pages, more than the {max_pages} this server reads at once: "
                                "select some with `pages`")
        results = []
        for index in select_pages(pages, count):
            try:
                text = _text_of(pdf, index)
                if text:
                    width, height, page_dpi = render.page_size_pixels(pdf, index, dpi)
                    results.append(OCRPageResult(index, text, width, height, page_dpi, False))
                    continue
                image, page_dpi = render.render_page(pdf, index, dpi)
            except pypdfium2.PdfiumError as exc:
                raise OCRInputError(f"the PDF is corrupt: page {index} cannot be read ({exc})") from exc
            read = engine.read(image, page_dpi)
            results.append(OCRPageResult(index, read.markdown, read.width, read.height, page_dpi, True))
        return results
    finally:
        render.close_pdf(pdf)


def _ocr_image(data: bytes, pages, engine: OCREngine, max_pages: int) -> list[OCRPageResult]:
    try:
        image = open_image(data)
        frames = getattr(image, "n_frames", 1)
        if frames > max_pages:
            raise OCRInputError(f"the image has {frames} pages, more than the {max_pages} this server reads at once")
        wanted = set(select_pages(pages, frames))
        results = []
        for index, frame in enumerate(ImageSequence.Iterator(image)):
            if index in wanted:
                check_size(frame)
                dpi = image_dpi(frame)
                read = engine.read(frame.convert("RGB"), dpi)
                results.append(OCRPageResult(index, read.markdown, read.width, read.height, dpi, True))
        return results
    except ImageUnreadable as exc:
        raise OCRInputError(str(exc)) from exc
    except (OSError, ValueError, SyntaxError, EOFError) as exc:
        if isinstance(exc, OCRInputError):
            raise
        raise OCRInputError(f"the image is corrupt or cannot be read: {exc}") from exc


def ocr_document(data: bytes, pages: str | list[int] | None, engine: OCREngine, dpi: int,
                 max_pages: int) -> list[OCRPageResult]:
    """The selected pages of `data` (a PDF or an image) read into Markdown."""
    engine.check()
    if document_kind(data) == "pdf":
        return _ocr_pdf(data, pages, engine, dpi, max_pages)
    return _ocr_image(data, pages, engine, max_pages)
