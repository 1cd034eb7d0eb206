"""Page-aware parsing of documents (PDF, DOCX, HTML, Markdown, plain text, images by OCR)."""

from plateforme.libraries.parsing.document import PAGE_SEPARATOR, DocumentRejected, ParsedDocument, ParsedPage
from plateforme.libraries.parsing.parse import parse_document
from plateforme.ocr.config import OCRConfig

__all__ = ["PAGE_SEPARATOR", "DocumentRejected", "OCRConfig", "ParsedDocument", "ParsedPage", "parse_document"]
