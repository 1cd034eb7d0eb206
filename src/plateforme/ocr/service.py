"""The OCR service behind POST /v1/ocr: the configured engine, its model names, and documents
read off the event loop (in threads, a few at a time: Tesseract runs as a subprocess anyway)."""

import asyncio

from plateforme.ocr.config import OCRConfig
from plateforme.ocr.documents import OCRPageResult, ocr_document
from plateforme.ocr.errors import OCRInputError
from plateforme.ocr.factory import build_ocr_engine

# Mistral's OCR model names answer too, so code written for Mistral's hosted API runs unchanged.
MISTRAL_ALIAS_PREFIX = "mistral-ocr-"


class UnknownOCRModel(LookupError):
    pass


class OCRService:
    def __init__(self, config: OCRConfig, max_pages: int, concurrency: int = 2):
        self.config, self.max_pages = config, max_pages
        self.engine = build_ocr_engine(config)
        self.model = config.model if config.engine == "openai" and config.model else self.engine.name
        self._slots = asyncio.Semaphore(max(1, concurrency))

    def resolve(self, model: str | None) -> str:
        """The served name for `model` (None, the served name, or a mistral-ocr-* name)."""
        if model is None or model == self.model or model.startswith(MISTRAL_ALIAS_PREFIX):
            return self.model
        raise UnknownOCRModel(f"No OCR model {model!r}: this server reads documents with {self.model!r} "
                              f"(also answers to mistral-ocr-latest)")

    async def process(self, data: bytes, pages: str | list[int] | None) -> list[OCRPageResult]:
        async with self._slots:
            return await asyncio.to_thread(ocr_document, data, pages, self.engine, self.config.dpi, self.max_pages)


__all__ = ["OCRInputError", "OCRService", "UnknownOCRModel"]
