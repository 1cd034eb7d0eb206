"""DOCX (python-docx): headings as Markdown headings, paragraphs, lists, tables as Markdown rows.
A DOCX has no pages of its own: pages are cut where Word last rendered page breaks
(w:lastRenderedPageBreak) when the file has them, else at explicit page breaks (w:br type=page,
pageBreakBefore); without either the document is one page."""

import io
import re
import zipfile

import docx
import docx.table
from docx.document import Document as DocxDocument
from docx.oxml.ns import qn
from docx.text.paragraph import Paragraph

from plateforme.libraries.parsing.document import DocumentRejected

_HEADING = re.compile(r"^heading\s*([1-9])$", re.IGNORECASE)
_BREAK = object()  # a page break in a paragraph's pieces
_W_P, _W_TBL, _W_R, _W_T, _W_TAB = qn("w:p"), qn("w:tbl"), qn("w:r"), qn("w:t"), qn("w:tab")
_W_BR, _W_CR, _W_RENDERED = qn("w:br"), qn("w:cr"), qn("w:lastRenderedPageBreak")
_W_TYPE, _W_VAL, _W_OUTLINE = qn("w:type"), qn("w:val"), qn("w:outlineLvl")


def _open(data: bytes) -> DocxDocument:
    try:
        return docx.Document(io.BytesIO(data))
    except (zipfile.BadZipFile, KeyError, ValueError, OSError) as exc:
        raise DocumentRejected(f"the DOCX is corrupt: {type(exc).__name__}: {exc}") from exc
    except Exception as exc:  # lxml.etree.XMLSyntaxError, python-docx's PackageNotFoundError...
        raise DocumentRejected(f"the DOCX is corrupt: {type(exc).__name__}: {exc}") from exc


def _pieces(paragraph, rendered: bool) -> list:
    """The paragraph's text pieces, with _BREAK where a page break falls."""
    pieces: list = []
    for run in paragraph.iter(_W_R):
        for child in run:
            if child.tag == _W_T:
                pieces.append(child.text or "")
            elif child.tag == _W_TAB:
                pieces.append("\t")
            elif child.tag == _W_CR:
                pieces.append("\n")
            elif child.tag == _W_BR:
                kind = child.get(_W_TYPE)
                if kind == "page":
                    if not rendered:
                        pieces.append(_BREAK)
                elif kind != "column":
                    pieces.append("\n")
            elif child.tag == _W_RENDERED and rendered:
                pieces.append(_BREAK)
    return pieces


def _outline_level(paragraph: Paragraph) -> int | None:
    """The heading level (1-based) a paragraph or its style chain declares with w:outlineLvl
    (custom heading styles, documents written in other languages' Word)."""
    elements = [paragraph._p.pPr]
    style = paragraph.style
    while style is not None and len(elements) < 10:
        elements.append(style.element.pPr)
        style = style.base_style
    for pPr in elements:
        level = pPr.find(_W_OUTLINE) if pPr is not None else None
        if level is not None and (value := level.get(_W_VAL, "")).isdigit() and int(value) < 9:
            return int(value) + 1
    return None


def _style_name(paragraph: Paragraph) -> str:
    return ((paragraph.style.name if paragraph.style is not None else "") or "").lower()


def _prefix(paragraph: Paragraph, below_title: int) -> str:
    """The paragraph's Markdown prefix; headings go one level deeper (below_title=1) in a document
    that has a Title, which is then its only level-1 heading."""
    style = _style_name(paragraph)
    if style == "title":
        return "# "
    if match := _HEADING.match(style):
        return "#" * min(int(match.group(1)) + below_title, 6) + " "
    if (level := _outline_level(paragraph)) is not None:
        return "#" * min(level + below_title, 6) + " "
    if style.startswith("list number"):
        return "1. "
    if style.startswith("list"):
        return "- "
    return ""


def _cell_text(cell) -> str:
    return " ".join(p.text.strip() for p in cell.paragraphs if p.text.strip()).replace("|", "\\|")


def _table(table) -> str:
    rows = []
    for row in table.rows:
        cells, seen = [], set()
        for cell in row.cells:  # a merged cell appears once per grid column it spans: keep it once
            if id(cell._tc) not in seen:
                seen.add(id(cell._tc))
                cells.append(_cell_text(cell))
        rows.append("| " + " | ".join(cells) + " |")
    if rows:
        width = rows[0].count(" | ") + 1
        rows.insert(1, "| " + " | ".join(["---"] * width) + " |")
    return "\n".join(rows)


def _break_before(paragraph: Paragraph) -> bool:
    return bool(paragraph.paragraph_format.page_break_before)


def parse_docx_pages(data: bytes) -> list[str]:
    """The document's pages as Markdown text (not yet normalised)."""
    document = _open(data)
    body = document.element.body
    rendered = next(body.iter(_W_RENDERED), None) is not None
    below_title = int(any(_style_name(p) == "title" for p in document.paragraphs))
    pages: list[list[str]] = [[]]
    for element in body.iterchildren():
        if element.tag == _W_TBL:
            pages[-1].append(_table(docx.table.Table(element, document)))
        elif element.tag == _W_P:
            paragraph = Paragraph(element, document)
            if not rendered and _break_before(paragraph) and any(pages[-1]):
                pages.append([])
            prefix, current = _prefix(paragraph, below_title), ""
            for piece in _pieces(element, rendered):
                if piece is _BREAK:
                    if current.strip():
                        pages[-1].append(prefix + current.strip())
                    pages.append([])
                    current = ""
                else:
                    current += piece
            if current.strip():
                pages[-1].append(prefix + current.strip())
    if rendered and not any(pages[0]) and len(pages) > 1:
        pages.pop(0)  # a break rendered before any text
    return ["\n\n".join(block for block in page if block) for page in pages]
