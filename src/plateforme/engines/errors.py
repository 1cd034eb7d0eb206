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


class EngineUnsupported(EngineRejected):
    """The request needs a feature the model's engine does not have (HTTP 400, names both)."""

    def __init__(self, model: str, engine: str, feature: str, param: str | None = None):
        super().__init__(f"model {model!r} is served by engine {engine!r}, which does not support "
                         f"{feature}; use a model served by engine 'llamacpp' for it")
        self.engine, self.feature, self.param = engine, feature, param
