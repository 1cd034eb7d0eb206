"""Errors of retrieval; each carries the HTTP status the API answers with and the field at fault."""


class SearchError(ValueError):
    def __init__(self, message: str, status: int = 400, param: str | None = None):
        super().__init__(message)
        self.status, self.param = status, param


class BadFilters(SearchError):
    def __init__(self, message: str):
        super().__init__(f"filters: {message}", 400, "filters")


class IndexSetupFailed(RuntimeError):
    """The database refused to create an index structure (e.g. the pgvector extension is missing)."""
