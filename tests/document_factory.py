"""Test documents made on the spot: PDFs with a text layer (pypdf and a hand-written content
stream), scanned pages (text drawn with Pillow, wrapped into a PDF by Pillow), DOCX (python-docx)."""

import io
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont
from pypdf import PdfWriter
from pypdf.generic import DecodedStreamObject, DictionaryObject, NameObject

FONT_CANDIDATES = ("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
                   "/usr/share/fonts/TTF/DejaVuSans.ttf",
                   "/usr/share/fonts/dejavu/DejaVuSans.ttf")


def _pdf_string(line: str) -> bytes:
    raw = line.encode("cp1252")  # Helvetica with WinAnsiEncoding: accents as single bytes
    return b"(" + raw.replace(b"\\", b"\\\\").replace(b"(", b"\\(").replace(b")", b"\\)") + b")"


def text_pdf(pages: list[list[str]]) -> bytes:
    """A PDF with one page per list of lines, each a real text layer in Helvetica."""
    writer = PdfWriter()
    for lines in pages:
        page = writer.add_blank_page(width=595, height=842)
        font = DictionaryObject({NameObject("/Type"): NameObject("/Font"),
                                 NameObject("/Subtype"): NameObject("/Type1"),
                                 NameObject("/BaseFont"): NameObject("/Helvetica"),
                                 NameObject("/Encoding"): NameObject("/WinAnsiEncoding")})
        page[NameObject("/Resources")] = DictionaryObject({
            NameObject("/Font"): DictionaryObject({NameObject("/F1"): writer._add_object(font)})})
        ops = [b"BT /F1 12 Tf 14 TL 72 770 Td"]
        ops += [_pdf_string(line) + b" Tj T*" for line in lines]
        ops.append(b"ET")
        stream = DecodedStreamObject()
        stream.set_data(b"\n".join(ops))
        page[NameObject("/Contents")] = writer._add_object(stream)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def font(size: int) -> ImageFont.FreeTypeFont:
    for path in FONT_CANDIDATES:
        if Path(path).exists():
            return ImageFont.truetype(path, size)
    return ImageFont.load_default(size)  # Pillow's bundled Aileron (Latin with accents)


def page_image(lines: list[str], dpi: int = 200) -> Image.Image:
    """An A5-ish white page with `lines` drawn in black at about 14 pt, as a scanner would give."""
    width, height = int(5.8 * dpi), int(8.3 * dpi)
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    face = font(int(14 / 72 * dpi))
    y = int(0.6 * dpi)
    for line in lines:
        draw.text((int(0.5 * dpi), y), line, fill="black", font=face)
        y += int(24 / 72 * dpi)
    return image


def scanned_pdf(pages: list[list[str]], dpi: int = 200) -> bytes:
    """A PDF whose pages are images only (no text layer), like a scan."""
    images = [page_image(lines, dpi) for lines in pages]
    out = io.BytesIO()
    images[0].save(out, format="PDF", save_all=True, append_images=images[1:], resolution=dpi)
    return out.getvalue()


def png(image: Image.Image, dpi: int = 200) -> bytes:
    out = io.BytesIO()
    image.save(out, format="PNG", dpi=(dpi, dpi))
    return out.getvalue()
