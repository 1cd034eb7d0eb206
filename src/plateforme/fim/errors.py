"""Errors of the fill-in-the-middle capability."""

from plateforme.chat.errors import InvalidChatRequest


class FIMUnsupported(InvalidChatRequest):
    """The model has no fill-in-the-middle tokens (HTTP 400, Mistral's error shape)."""

    def __init__(self, message: str):
        super().__init__(message, param="model")
