"""Failures of a model engine, as the rest of the platform sees them."""


class EngineUnavailable(RuntimeError):
    """The worker is down, starting, or its queue is full: retry later (HTTP 503)."""

    def __init__(self, message: str, retry_after_s: int = 2):
        super().__init__(message)
        self.retry_after_s = retry_after_s


class EngineRejected(RuntimeError):
    """The engine refused the request as invalid (HTTP 400)."""


class EngineContextExceeded(EngineRejected):
    """The prompt alone does not fit the engine's context window."""

    def __init__(self, message: str, prompt_tokens: int | None, context: int | None):
        super().__init__(message)
        self.prompt_tokens = prompt_tokens
        self.context = context
