"""Chunking by headings and pages: a document's text_content cut first at its Markdown headings,
then at paragraph, line, sentence or word boundaries into chunks of at most max_chars, each
overlapping the one before by about overlap_chars. A chunk never spans two sections (it may cross
a page boundary); it keeps the heading path it sits under, its page (where it starts) and its
offsets: text_content[start:end] == text."""

import re
from bisect import bisect_right
from dataclasses import dataclass

from plateforme.libraries.parsing.document import ParsedDocument

_HEADING = re.compile(r"^ {0,3}(#{1,6})[ \t]+(.+?)(?:[ \t]+#+)?[ \t]*$")
_FENCE = re.compile(r"^ {0,3}(```|~~~)")
_SETEXT = re.compile(r"^ {0,3}(=+|-+)[ \t]*$")
_NOT_SETEXT = re.compile(r"^ {0,3}([-*+>|]|\d+[.)]|#)|^ {4}")  # list items, quotes, tables, code
# Where a chunk may end, best first; a chunk ends after the match (trailing blanks dropped).
_BREAKS = (re.compile(r"\n[ \t]*\n"), re.compile(r"\n"),
           re.compile(r"[.!?…;:][\"'»”’)\]]*\s"), re.compile(r"[,)]\s"), re.compile(r"\s"))
_SENTENCE_END = re.compile(r"[.!?…][\"'»”’)\]]*\s+|\n\s*")
HEADING_SEPARATOR = " > "


@dataclass
class Chunk:
    ordinal: int
    page: int            # 1-based page where `start` falls
    start: int           # offsets into the document's text_content
    end: int
    heading: str | None  # the heading path ("Chapter > Section"), None before any heading
    text: str

    @property
    def embedded_text(self) -> str:
        """What is embedded of the chunk: its heading path (which carries the document's title and
        section, often the words a question uses) above its text."""
        return f"{self.heading}\n{self.text}" if self.heading else self.text


@dataclass
class _Section:
    start: int
    end: int
    level: int           # 0: text before the first heading
    path: tuple[str, ...]
    body_start: int      # after the heading line


def _is_setext(lines: list[str], i: int, fences: set[int]) -> bool:
    """A one-line paragraph underlined with === or --- (Markdown's other heading form)."""
    if i + 1 >= len(lines) or i + 1 in fences or not _SETEXT.match(lines[i + 1]):
        return False
    line = lines[i].strip()
    return (bool(line) and (i == 0 or not lines[i - 1].strip()) and not _NOT_SETEXT.match(lines[i])
            and len(line) <= 200)


def _sections(text: str) -> list[_Section]:
    lines = text.split("\n")
    fences = [i for i, line in enumerate(lines) if _FENCE.match(line)]
    fences = set(fences[:len(fences) - len(fences) % 2])  # an unclosed fence (OCR noise) fences nothing
    marks, offset, fenced = [], 0, False
    for i, line in enumerate(lines):
        if i in fences:
            fenced = not fenced
        elif not fenced and (match := _HEADING.match(line)):
            marks.append((offset, len(match.group(1)), match.group(2).strip(), offset + len(line)))
        elif not fenced and _is_setext(lines, i, fences):
            underline = lines[i + 1]
            marks.append((offset, 1 if "=" in underline else 2, line.strip(), offset + len(line) + 1 + len(underline)))
        offset += len(line) + 1
    sections, path = [], []
    if not marks or marks[0][0] > 0:
        sections.append(_Section(0, marks[0][0] if marks else len(text), 0, (), 0))
    for i, (start, level, title, line_end) in enumerate(marks):
        path = [p for p in path if p[0] < level] + [(level, title)]
        end = marks[i + 1][0] if i + 1 < len(marks) else len(text)
        sections.append(_Section(start, end, level, tuple(t for _, t in path), line_end))
    return sections


def _strip(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def _cut(text: str, start: int, limit: int) -> int:
    """Where the chunk starting at `start` ends, at most `limit`: the best boundary in its second half."""
    low = start + (limit - start) // 2
    for pattern in _BREAKS:
        best = None
        for match in pattern.finditer(text, low, limit):
            best = match.end()
        if best is not None and best > start:
            return best
    return limit  # one long word: cut it


def _next_start(text: str, start: int, cut: int, overlap: int) -> int:
    """The next chunk's start: about `overlap` characters before `cut`, at a sentence start when
    the overlap holds one, else at a word start."""
    if overlap <= 0:
        return cut
    back = max(cut - overlap, start + 1)
    sentence = _SENTENCE_END.search(text, back, cut)
    if sentence is not None and sentence.end() < cut:
        return sentence.end()
    while back < cut and not text[back - 1].isspace():
        back += 1
    return back


def _pieces(text: str, start: int, end: int, max_chars: int, overlap: int):
    start, end = _strip(text, start, end)
    while start < end:
        if end - start <= max_chars:
            yield start, end
            return
        cut = _cut(text, start, start + max_chars)
        yield _strip(text, start, cut)
        start, _ = _strip(text, max(_next_start(text, start, cut, overlap), start + 1), end)


def chunk_document(parsed: ParsedDocument, max_chars: int = 1200, overlap_chars: int = 150) -> list[Chunk]:
    if max_chars < 20:
        raise ValueError(f"max_chars must be at least 20, not {max_chars}")
    overlap = max(0, min(overlap_chars, max_chars // 3))
    text, offsets = parsed.text_content, parsed.page_offsets
    sections = _sections(text)
    chunks: list[Chunk] = []
    for i, section in enumerate(sections):
        body_empty = not text[section.body_start:section.end].strip()
        deeper_next = i + 1 < len(sections) and sections[i + 1].level > section.level
        if section.level and body_empty and deeper_next:
            continue  # a heading alone, right above its subsections: it lives on in their heading path
        heading = HEADING_SEPARATOR.join(section.path) or None
        for start, end in _pieces(text, section.start, section.end, max_chars, overlap):
            if start < end:
                chunks.append(Chunk(len(chunks), bisect_right(offsets, start), start, end, heading, text[start:end]))
    return chunks
