"""OCR: one page image in, Markdown text and the page's dimensions out (Tesseract by default, or
a vision model behind an OpenAI-compatible server); and whole documents for POST /v1/ocr."""
