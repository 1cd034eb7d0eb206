"""Scanned images (PNG, JPEG, TIFF...): opened with a size limit, and their resolution."""

import io

from PIL import Image, UnidentifiedImageError

from plateforme.ocr.render import MAX_PIXELS

# Scans whose file states no resolution are taken to be at this one.
DEFAULT_SCAN_DPI = 300


class ImageUnreadable(ValueError):
    pass


def check_size(image: Image.Image) -> None:
    width, height = image.size
    if width * height > MAX_PIXELS:
        raise ImageUnreadable(f"the image is {width}x{height} pixels, more than the {MAX_PIXELS} this server reads: "
                              "scan it at a lower resolution (300 dpi is plenty for OCR)")


def open_image(data: bytes) -> Image.Image:
    """The image in `data`, its first frame loaded; ImageUnreadable when corrupt or too large."""
    try:
        image = Image.open(io.BytesIO(data))
        check_size(image)  # from the header, before any pixel is decoded
        image.load()
        return image
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError) as exc:
        if isinstance(exc, ImageUnreadable):
            raise
        raise ImageUnreadable(f"the image is corrupt or cannot be read: {exc}") from exc


def image_dpi(image: Image.Image) -> int:
    dpi = image.info.get("dpi")
    try:
        value = round(float(dpi[0])) if dpi else 0
    except (TypeError, ValueError, IndexError, OverflowError):
        value = 0
    return value if 50 <= value <= 2400 else DEFAULT_SCAN_DPI
