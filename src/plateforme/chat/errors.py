"""Errors of the chat capability that callers must tell apart."""




class ContextLengthExceeded(ValueError):
    """Prompt plus requested completion do not fit the model's context window (never truncated)."""

    def __init__(self, message: str, param: str = "messages"):
        super().__init__(message)
        self.param = param


class InvalidChatRequest(ValueError):
    """A request that is well-formed JSON but cannot be served as asked (HTTP 400)."""

    def __init__(self, message: str, param: str | None = None):
        super().__init__(message)
        self.param = param
