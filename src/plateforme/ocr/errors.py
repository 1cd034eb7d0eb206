"""What an OCR engine can fail with."""


class OCRError(RuntimeError):
    """OCR could not read a page; the message names the cause and the fix."""


class OCRUnavailable(OCRError):
    """The engine cannot run here at all (binary or language data missing, server not configured)."""


class OCRInputError(ValueError):
    """The document or the request cannot be read (not a PDF or image, corrupt, encrypted, bad pages)."""

    def __init__(self, message: str, param: str | None = "document"):
        super().__init__(message)
        self.param = param
