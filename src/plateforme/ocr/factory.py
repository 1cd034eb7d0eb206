"""The OCR engine an OCRConfig names."""

from plateforme.ocr.config import OCRConfig
from plateforme.ocr.engine import OCREngine
from plateforme.ocr.errors import OCRUnavailable
from plateforme.ocr.openai_vision import OpenAIVisionEngine
from plateforme.ocr.tesseract import TesseractEngine


def build_ocr_engine(config: OCRConfig) -> OCREngine:
    if config.engine == "tesseract":
        return TesseractEngine(config.languages, config.timeout_s)
    if config.engine == "openai":
        return OpenAIVisionEngine(config.base_url, config.model, config.api_key, config.timeout_s)
    raise OCRUnavailable(f"unknown OCR engine {config.engine!r}: PLATEFORME_OCR_ENGINE is 'tesseract' or 'openai'")
