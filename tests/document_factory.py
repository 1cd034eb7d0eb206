"""Test documents made on the spot: PDFs with a text layer (pypdf and a hand-written content
stream in Helvetica), scanned pages (such a PDF rendered to an image by PDFium, whose built-in
fonts have every accent: no font needs to be installed; wrapped into an image-only PDF by Pillow)."""

import io

import pypdfium2
from PIL import Image
from pypdf import PdfWriter
from pypdf.generic import DecodedStreamObject, DictionaryObject, NameObject


def _pdf_string(line: str) -> bytes:
    raw = line.encode("cp1252")  # Helvetica with WinAnsiEncoding: accents as single bytes
    return b"(" + raw.replace(b"\\", b"\\\\").replace(b"(", b"\\(").replace(b")", b"\\)") + b")"


def text_pdf(pages: list[list[str | tuple[int, str]]], size: tuple[int, int] = (595, 842),
             font_size: int = 12) -> bytes:
    """A PDF with one page per list of lines, each a real text layer in Helvetica (A4 by default);
    a line may be (font size, text); an empty line leaves a gap."""
    writer = PdfWriter()
    for lines in pages:
        page = writer.add_blank_page(width=size[0], height=size[1])
        font = DictionaryObject({NameObject("/Type"): NameObject("/Font"),
                                 NameObject("/Subtype"): NameObject("/Type1"),
                                 NameObject("/BaseFont"): NameObject("/Helvetica"),
                                 NameObject("/Encoding"): NameObject("/WinAnsiEncoding")})
        page[NameObject("/Resources")] = DictionaryObject({
            NameObject("/Font"): DictionaryObject({NameObject("/F1"): writer._add_object(font)})})
        ops = [b"BT 40 %d Td" % (size[1] - 60)]
        for line in lines:
            points, text = line if isinstance(line, tuple) else (font_size, line)
            if text:
                ops.append(b"/F1 %d Tf " % points + _pdf_string(text) + b" Tj")
            ops.append(b"0 -%d Td" % (points * 3 // 2))
        ops.append(b"ET")
        stream = DecodedStreamObject()
        stream.set_data(b"\n".join(ops))
        page[NameObject("/Contents")] = writer._add_object(stream)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def page_image(lines: list[str], dpi: int = 200) -> Image.Image:
    """An A5 page with `lines` in black 14 pt Helvetica on white, as a scanner at `dpi` would give it."""
    pdf = pypdfium2.PdfDocument(text_pdf([lines], size=(420, 595), font_size=14))
    try:
        page = pdf[0]
        bitmap = page.render(scale=dpi / 72)
        image = bitmap.to_pil().convert("RGB")
        bitmap.close()
        page.close()
        return image
    finally:
        pdf.close()


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
