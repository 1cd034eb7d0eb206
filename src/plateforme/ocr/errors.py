"""What an OCR engine can fail with."""


class OCRError(RuntimeError):
    """OCR could not read a page; the message names the cause and the fix."""


class OCRUnavailable(OCRError):
    """The engine cannot run here at all (binary or language data missing, server not configured)."""
