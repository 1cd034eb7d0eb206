"""Markdown structure of PDF text layers: pypdf gives each piece of text with its font size and
position; lines set larger than the document's body text become Markdown headings (one level per
size, largest first), and a vertical gap wider than the body's line spacing starts a paragraph."""

import math
from collections import Counter
from dataclasses import dataclass

import pypdf

# A line at least this much larger than the body text is a heading...
HEADING_RATIO = 1.15
# ...if it is short enough to be one.
HEADING_MAX_CHARS, HEADING_MAX_WORDS = 200, 25
# A gap this much wider than the body's usual line spacing separates two paragraphs.
PARAGRAPH_GAP = 1.4


@dataclass
class Line:
    text: str
    size: float   # the largest font size on the line (points, after the text and graphics matrices)
    y: float      # baseline of its first piece (points from the page's bottom)


def _scale(cm, tm) -> tuple[float, float]:
    """The vertical scale and baseline y of text drawn with text matrix tm under graphics matrix cm."""
    c = tm[2] * cm[0] + tm[3] * cm[2]
    d = tm[2] * cm[1] + tm[3] * cm[3]
    y = tm[4] * cm[1] + tm[5] * cm[3] + cm[5]
    return math.hypot(c, d), y


def page_lines(page: pypdf.PageObject) -> tuple[str, list[Line] | None]:
    """The page's text (pypdf's extract_text) and its lines with their sizes; None for the lines
    when pypdf's pieces do not add up to its text."""
    pieces: list[tuple[str, float, float]] = []

    def visit(text, cm, tm, font_dict, font_size):
        try:
            scale, y = _scale(cm, tm)
            size = float(font_size or 0) * scale
        except (TypeError, ValueError, IndexError):
            size, y = 0.0, 0.0
        pieces.append((text, size if math.isfinite(size) else 0.0, y if math.isfinite(y) else 0.0))

    text = page.extract_text(visitor_text=visit) or ""
    if "".join(p[0] for p in pieces) != text:
        return text, None
    lines, current, size, y = [], "", 0.0, None
    for piece, piece_size, piece_y in pieces:
        parts = piece.split("\n")
        for i, part in enumerate(parts):
            if part.strip():
                size = max(size, piece_size)
                y = piece_y if y is None else y
            current += part
            if i < len(parts) - 1:
                lines.append(Line(current, size, y if y is not None else 0.0))
                current, size, y = "", 0.0, None
    if current:
        lines.append(Line(current, size, y if y is not None else 0.0))
    return text, lines


def _body_size(pages: list[list[Line]]) -> float:
    weights: Counter = Counter()
    for lines in pages:
        for line in lines:
            if line.text.strip():
                weights[round(line.size * 2) / 2] += len(line.text.strip())
    return weights.most_common(1)[0][0] if weights else 0.0


def _is_heading(line: Line, body: float) -> bool:
    stripped = line.text.strip()
    return (body > 0 and line.size >= body * HEADING_RATIO and 0 < len(stripped) <= HEADING_MAX_CHARS
            and len(stripped.split()) <= HEADING_MAX_WORDS and not stripped.endswith((",", ";")))


def _line_gap(pages: list[list[Line]], body: float) -> float:
    gaps = []
    for lines in pages:
        body_lines = [line for line in lines if line.text.strip() and abs(line.size - body) < 0.5]
        gaps += [a.y - b.y for a, b in zip(body_lines, body_lines[1:]) if 0 < a.y - b.y < 4 * body]
    return sorted(gaps)[len(gaps) // 4] if gaps else 0.0  # lower quartile: most gaps are line spacing


def _new_paragraph(previous: Line | None, line: Line, gap: float) -> bool:
    """A wide gap below the previous line, or a jump back up the page (the next column)."""
    return previous is not None and gap > 0 and (previous.y - line.y > gap * PARAGRAPH_GAP or line.y - previous.y > gap)


def markdown_pages(pages: list[list[Line]]) -> list[str]:
    """Each page's lines as Markdown: headings by size, paragraphs by vertical gaps."""
    body = _body_size(pages)
    sizes = sorted({round(line.size * 2) / 2 for lines in pages for line in lines if _is_heading(line, body)},
                   reverse=True)
    levels = {size: min(rank + 1, 6) for rank, size in enumerate(sizes)}
    gap = _line_gap(pages, body)
    out = []
    for lines in pages:
        blocks: list[str] = []
        previous: Line | None = None
        heading_size = None
        for line in lines:
            stripped = line.text.strip()
            if not stripped:
                continue
            if _is_heading(line, body):
                size = round(line.size * 2) / 2
                if heading_size == size and blocks:  # a heading wrapped over two lines
                    blocks[-1] += " " + stripped
                else:
                    blocks.append("#" * levels[size] + " " + stripped)
                heading_size = size
            elif heading_size is not None or not blocks or _new_paragraph(previous, line, gap):
                blocks.append(line.text.rstrip())
                heading_size = None
            else:
                blocks[-1] += "\n" + line.text.rstrip()
            previous = line
        out.append("\n\n".join(blocks))
    return out
