"""Generate the evaluation set's PDF and DOCX documents from their Markdown sources.

    python benchmarks/data/retrieval/build_documents.py

`sources/*.md` are the texts as written; this script renders them into `documents/`:
- the PDFs with a real text layer (Helvetica, WinAnsiEncoding, one content stream per page) and a
  real page break wherever the source has `<!-- pagebreak -->`; written by hand below (a PDF of
  plain text is a few objects and an xref table), so no PDF library is needed to make them;
- the DOCX with python-docx: headings (Heading 1/2 styles), paragraphs, a table, a page break.
The outputs are committed, so the benchmark and the tests never need this script; it is
deterministic (no dates in the files), so re-running it leaves them unchanged.
"""

import io
import zipfile
from datetime import datetime
from pathlib import Path

HERE = Path(__file__).parent
SOURCES = HERE / "sources"
DOCUMENTS = HERE / "documents"

PDF_OUTPUTS = {"politique_securite_fr.md": "politique_securite_fr.pdf",
               "beacon_s2_manual_en.md": "beacon_s2_manual_en.pdf"}
DOCX_OUTPUTS = {"expense_policy_en.md": "expense_policy_en.docx",
                "guide_accueil_fr.md": "guide_accueil_fr.docx"}
PAGEBREAK = "<!-- pagebreak -->"


def blocks(markdown: str) -> list[tuple[str, object]]:
    """The source as (kind, content): ("h1"|"h2"|"p", text), ("table", rows), ("pagebreak", None)."""
    out: list[tuple[str, object]] = []
    for block in markdown.split("\n\n"):
        block = block.strip()
        if not block:
            continue
        if block == PAGEBREAK:
            out.append(("pagebreak", None))
        elif block.startswith("## "):
            out.append(("h2", block[3:]))
        elif block.startswith("# "):
            out.append(("h1", block[2:]))
        elif block.startswith("|"):
            rows = [[cell.strip() for cell in line.strip().strip("|").split("|")]
                    for line in block.splitlines()]
            out.append(("table", [row for row in rows if not set("".join(row)) <= {"-", " "}]))
        else:
            out.append(("p", " ".join(block.split())))
    return out


# ---- PDF ---------------------------------------------------------------------------------------

PAGE_W, PAGE_H, MARGIN = 595, 842, 72  # A4, in points
STYLES = {"h1": ("F2", 16, 22), "h2": ("F2", 13, 18), "p": ("F1", 11, 15)}  # font, size, leading
WRAP = {"h1": 52, "h2": 64, "p": 84}  # characters per line that fit 451 pt of Helvetica


def wrap(text: str, width: int) -> list[str]:
    lines, line = [], ""
    for word in text.split():
        if line and len(line) + 1 + len(word) > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}" if line else word
    return lines + ([line] if line else [])


def pdf_string(text: str) -> bytes:
    raw = text.encode("cp1252")  # WinAnsiEncoding: French accents, «», € are single bytes
    return b"(" + raw.replace(b"\\", b"\\\\").replace(b"(", b"\\(").replace(b")", b"\\)") + b")"


def page_stream(page_blocks: list[tuple[str, object]]) -> bytes:
    ops = [b"BT", f"{MARGIN} {PAGE_H - MARGIN} Td".encode()]  # T*: the next line down
    for kind, text in page_blocks:
        if kind not in STYLES:
            raise ValueError(f"the PDF writer renders headings and paragraphs, not {kind}")
        font, size, leading = STYLES[kind]
        ops.append(f"/{font} {size} Tf {leading} TL".encode())
        if kind != "p" and len(ops) > 3:
            ops.append(b"T*")  # a blank line above a heading
        for line in wrap(text, WRAP[kind]):
            ops.append(pdf_string(line) + b" Tj T*")
    ops.append(b"ET")
    return b"\n".join(ops)


def write_pdf(source: list[tuple[str, object]], title: str) -> bytes:
    pages: list[list] = [[]]
    for kind, content in source:
        if kind == "pagebreak":
            pages.append([])
        else:
            pages[-1].append((kind, content))
    # Objects: 1 catalog, 2 pages, 3-4 fonts, 5 info, then (page, content) pairs.
    objects: list[bytes] = [b"", b"", b"", b"", b""]
    kids = []
    for page in pages:
        stream = page_stream(page)
        page_id, content_id = len(objects) + 1, len(objects) + 2
        kids.append(f"{page_id} 0 R")
        objects.append(f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 {PAGE_W} {PAGE_H}] "
                       f"/Resources << /Font << /F1 3 0 R /F2 4 0 R >> >> "
                       f"/Contents {content_id} 0 R >>".encode())
        objects.append(f"<< /Length {len(stream)} >>\nstream\n".encode() + stream + b"\nendstream")
    objects[0] = b"<< /Type /Catalog /Pages 2 0 R >>"
    objects[1] = f"<< /Type /Pages /Kids [{' '.join(kids)}] /Count {len(pages)} >>".encode()
    for index, base in ((2, "Helvetica"), (3, "Helvetica-Bold")):
        objects[index] = (f"<< /Type /Font /Subtype /Type1 /BaseFont /{base} "
                          f"/Encoding /WinAnsiEncoding >>").encode()
    objects[4] = b"<< /Title " + pdf_string(title) + b" /Producer (plateforme build_documents.py) >>"
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(out.tell())
        out.write(f"{number} 0 obj\n".encode() + body + b"\nendobj\n")
    xref = out.tell()
    out.write(f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode())
    for offset in offsets:
        out.write(f"{offset:010d} 00000 n \n".encode())
    out.write(f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R /Info 5 0 R >>\n"
              f"startxref\n{xref}\n%%EOF\n".encode())
    return out.getvalue()


# ---- DOCX --------------------------------------------------------------------------------------

FIXED_TIME = datetime(2026, 1, 1)


def write_docx(source: list[tuple[str, object]], title: str) -> bytes:
    from docx import Document

    document = Document()
    document.core_properties.title = title
    document.core_properties.author = "Orsenne Technologies"
    document.core_properties.created = document.core_properties.modified = FIXED_TIME
    document.core_properties.last_modified_by = "build_documents.py"
    for kind, content in source:
        if kind == "h1":
            document.add_heading(content, level=1)
        elif kind == "h2":
            document.add_heading(content, level=2)
        elif kind == "p":
            document.add_paragraph(content)
        elif kind == "pagebreak":
            document.add_page_break()
        elif kind == "table":
            table = document.add_table(rows=len(content), cols=len(content[0]))
            table.style = "Table Grid"
            for row, values in zip(table.rows, content):
                for cell, value in zip(row.cells, values):
                    cell.text = value
    raw = io.BytesIO()
    document.save(raw)
    return _fixed_zip_dates(raw.getvalue())


def _fixed_zip_dates(data: bytes) -> bytes:
    """The same archive with every entry dated FIXED_TIME (python-docx stamps the current time)."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, \
            zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            entry = zipfile.ZipInfo(info.filename, date_time=FIXED_TIME.timetuple()[:6])
            entry.compress_type = zipfile.ZIP_DEFLATED
            dst.writestr(entry, src.read(info.filename))
    return out.getvalue()


def main() -> None:
    DOCUMENTS.mkdir(exist_ok=True)
    for writer, outputs in ((write_pdf, PDF_OUTPUTS), (write_docx, DOCX_OUTPUTS)):
        for source_name, output_name in outputs.items():
            source = blocks((SOURCES / source_name).read_text(encoding="utf-8"))
            title = next(content for kind, content in source if kind == "h1")
            (DOCUMENTS / output_name).write_bytes(writer(source, title))
            print(f"wrote documents/{output_name}")


if __name__ == "__main__":
    main()
