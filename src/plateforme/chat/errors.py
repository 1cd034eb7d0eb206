"""Errors of the chat capability that callers must tell apart."""


class UnknownModel(LookupError):
    def __init__(self, model: str):
        super().__init__(f"model {model!r} does not exist; list the served models with GET /v1/models")
        self.model = model


class ContextLengthExceeded(ValueError):
    """Prompt plus requested completion do not fit the model's context window (never truncated)."""
