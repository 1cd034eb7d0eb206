"""Tool-call ids in Mistral's format: 9 alphanumeric characters."""

import secrets
import string

_ALPHABET = string.ascii_letters + string.digits


def new_tool_call_id() -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(9))
