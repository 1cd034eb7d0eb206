"""OCR of page images during parsing: the engine is built and checked once per document."""

from PIL import Image

from plateforme.libraries.parsing.document import DocumentRejected
from plateforme.ocr.config import OCRConfig
from plateforme.ocr.engine import OCREngine
from plateforme.ocr.errors import OCRError
from plateforme.ocr.factory import build_ocr_engine


class PageReader:
    """Reads page images with the configured engine; OCR failures reject the document with their cause."""

    def __init__(self, config: OCRConfig):
        self.config = config
        self._engine: OCREngine | None = None

    def read(self, image: Image.Image, dpi: int, page_number: int) -> str:
        try:
            if self._engine is None:
                engine = build_ocr_engine(self.config)
                engine.check()
                self._engine = engine
            return self._engine.read(image, dpi).markdown
        except OCRError as exc:
            raise DocumentRejected(f"page {page_number} has no text layer and needs OCR, which failed: {exc}") from exc
