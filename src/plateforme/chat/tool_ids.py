"""Tool-call ids in Mistral's format: 9 alphanumeric characters."""

import re
import secrets
import string

_ALPHABET = string.ascii_letters + string.digits
_VALID = re.compile(r"^[A-Za-z0-9]{9}$")


def new_tool_call_id() -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(9))


def mistral_tool_call_id(engine_id: str | None) -> str:
    """Keep an engine's id when it already has Mistral's shape, else mint one."""
    return engine_id if engine_id and _VALID.match(engine_id) else new_tool_call_id()
