"""Which OCR engine to use and how to reach it: plain data, picklable (worker processes get it)."""

import os
from dataclasses import dataclass

# Resolution scanned PDF pages are rendered at before OCR (and the `dpi` POST /v1/ocr reports).
DEFAULT_DPI = 200


@dataclass(frozen=True)
class OCRConfig:
    engine: str = "tesseract"        # "tesseract" | "openai"
    languages: str = "eng+fra"       # Tesseract's -l (languages joined with +)
    base_url: str | None = None      # "openai": the server's /v1 URL
    model: str | None = None         # "openai": the served vision model
    api_key: str | None = None       # "openai": the key (None: no Authorization header)
    dpi: int = DEFAULT_DPI
    timeout_s: float = 300.0         # one page


def ocr_config_from_settings(settings) -> OCRConfig:
    """The OCRConfig of the gateway's settings (ocr_engine, ocr_languages, ocr_base_url, ocr_model,
    ocr_api_key_env: the name of the environment variable holding the key)."""
    key_env = settings.ocr_api_key_env
    return OCRConfig(engine=settings.ocr_engine, languages=settings.ocr_languages,
                     base_url=settings.ocr_base_url, model=settings.ocr_model,
                     api_key=os.environ.get(key_env) if key_env else None)
