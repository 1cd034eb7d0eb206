"""plateforme: a self-hostable AI developer platform with a Mistral-compatible API."""

__version__ = "0.1.0"
