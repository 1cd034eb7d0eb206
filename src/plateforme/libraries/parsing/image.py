"""Images (PNG, JPEG, TIFF, GIF, BMP, WebP): each frame is a page, read by OCR."""

import io

from PIL import Image, ImageSequence, UnidentifiedImageError

from plateforme.libraries.parsing.document import DocumentRejected, ParsedPage
from plateforme.libraries.parsing.normalize import normalize_text
from plateforme.libraries.parsing.ocr_pages import PageReader

# Scans whose file states no resolution are taken to be at this one.
DEFAULT_SCAN_DPI = 300
# Largest image read (pixels): beyond, Pillow's decompression-bomb guard applies.
MAX_PIXELS = 20_000 * 20_000


def image_dpi(image: Image.Image) -> int:
    dpi = image.info.get("dpi")
    try:
        value = round(float(dpi[0])) if dpi else 0
    except (TypeError, ValueError, IndexError):
        value = 0
    return value if 50 <= value <= 2400 else DEFAULT_SCAN_DPI


def open_image(data: bytes) -> Image.Image:
    Image.MAX_IMAGE_PIXELS = MAX_PIXELS
    try:
        image = Image.open(io.BytesIO(data))
        image.load()
        return image
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise DocumentRejected(f"the image is corrupt or cannot be read: {exc}") from exc


def parse_image(data: bytes, ocr: PageReader, max_pages: int) -> list[ParsedPage]:
    image = open_image(data)
    frames = getattr(image, "n_frames", 1)
    if frames > max_pages:
        raise DocumentRejected(f"the image has {frames} pages, more than the {max_pages} this server ingests "
                               "(PLATEFORME_LIBRARY_MAX_PAGES): split it")
    pages = []
    try:
        for index, frame in enumerate(ImageSequence.Iterator(image)):
            text = ocr.read(frame.convert("RGB"), image_dpi(frame), index + 1)
            pages.append(ParsedPage(index + 1, normalize_text(text), True))
    except (OSError, ValueError, EOFError) as exc:
        raise DocumentRejected(f"the image is corrupt or cannot be read: {exc}") from exc
    return pages
