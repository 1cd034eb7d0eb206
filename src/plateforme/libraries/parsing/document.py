"""What parsing returns: a document as its pages' text (picklable: parsing runs in worker processes)."""

from dataclasses import dataclass, field
from itertools import accumulate

# Between two pages in a document's text_content.
PAGE_SEPARATOR = "\n\n"


class DocumentRejected(ValueError):
    """The file cannot be ingested; str(exc) is the reason shown to the user."""


@dataclass
class ParsedPage:
    number: int        # 1-based
    text: str          # normalised; Markdown headings where the format has headings
    ocr: bool = False  # read by OCR


@dataclass
class ParsedDocument:
    pages: list[ParsedPage] = field(default_factory=list)
    format: str = ""   # "pdf", "docx", "html", "markdown", "text", "image"

    @property
    def text_content(self) -> str:
        return PAGE_SEPARATOR.join(page.text for page in self.pages)

    @property
    def page_offsets(self) -> list[int]:
        """Offset in text_content where each page starts (page n starts at page_offsets[n - 1])."""
        lengths = [len(page.text) + len(PAGE_SEPARATOR) for page in self.pages[:-1]]
        return [0, *accumulate(lengths)] if self.pages else []

    @property
    def ocr_pages(self) -> int:
        return sum(page.ocr for page in self.pages)
