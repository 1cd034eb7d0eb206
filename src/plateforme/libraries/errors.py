"""Errors of document libraries; each carries the HTTP status the API answers with."""


class LibraryError(Exception):
    def __init__(self, message: str, status: int = 400, param: str | None = None):
        super().__init__(message)
        self.status, self.param = status, param


class LibraryNotFound(LibraryError):
    """No such library, or none the caller may see (the two are never told apart)."""

    def __init__(self, library_id: str):
        super().__init__(f"No library with id {library_id!r} that this key can access.", 404, "library_id")


class DocumentNotFound(LibraryError):
    def __init__(self, document_id: str):
        super().__init__(f"No document with id {document_id!r} in this library.", 404, "document_id")


class LibraryForbidden(LibraryError):
    """The caller may see the library but its role is too low for the operation."""

    def __init__(self, library_id: str, role: str, needed: str):
        super().__init__(f"This key is {role} of library {library_id!r}; this operation needs {needed} "
                         "(ask the library's owner to share it with a higher role).", 403, "library_id")
