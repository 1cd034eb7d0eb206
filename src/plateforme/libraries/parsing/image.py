"""Images (PNG, JPEG, TIFF, GIF, BMP, WebP): each frame is a page, read by OCR."""

from PIL import ImageSequence

from plateforme.libraries.parsing.document import DocumentRejected, ParsedPage
from plateforme.libraries.parsing.normalize import normalize_text
from plateforme.libraries.parsing.ocr_pages import PageReader
from plateforme.ocr.images import ImageUnreadable, check_size, image_dpi, open_image


def parse_image(data: bytes, ocr: PageReader, max_pages: int) -> list[ParsedPage]:
    try:
        image = open_image(data)
    except ImageUnreadable as exc:
        raise DocumentRejected(str(exc)) from exc
    frames = getattr(image, "n_frames", 1)
    if frames > max_pages:
        raise DocumentRejected(f"the image has {frames} pages, more than the {max_pages} this server ingests "
                               "(PLATEFORME_LIBRARY_MAX_PAGES): split it")
    pages = []
    try:
        for index, frame in enumerate(ImageSequence.Iterator(image)):
            check_size(frame)
            text = ocr.read(frame.convert("RGB"), image_dpi(frame), index + 1)
            pages.append(ParsedPage(index + 1, normalize_text(text), True))
    except ImageUnreadable as exc:
        raise DocumentRejected(f"page {len(pages) + 1}: {exc}") from exc
    except (OSError, ValueError, EOFError, SyntaxError) as exc:
        raise DocumentRejected(f"the image is corrupt or cannot be read: {exc}") from exc
    return pages
