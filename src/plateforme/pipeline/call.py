"""One generation asked of the pipeline: who asks, for what, and how it is named in records."""

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from plateforme.observability.context import current_request
from plateforme.tenancy.principal import Principal


def new_completion_id() -> str:
    return "cmpl-" + secrets.token_hex(16)


def _arrival() -> float:
    """perf_counter() when the HTTP request being served arrived, else now (non-HTTP callers)."""
    ctx = current_request()
    return ctx.started if ctx is not None else time.perf_counter()


@dataclass
class GenerationCall:
    principal: Principal
    # "chat" (a ChatRequest) or "fim" (a FIMRequest): the capability that generates it.
    route: str
    request: Any
    # The request as the caller sent it (a pydantic model), stored with the answer when the
    # workspace captures traces; None: never captured.
    traced: Any = None
    id: str = field(default_factory=new_completion_id)
    created: int = field(default_factory=lambda: int(time.time()))
    # time.perf_counter() of the request's arrival: the origin of its time to first token.
    started: float = field(default_factory=_arrival)
    # Set by the guardrails guard (guardrails/guard.py) as it checks the call: what each rule
    # checked and found (the response's `guardrails`), the moderation tokens the checks read
    # (recorded with the call's usage), and the transform that redacted the input (also applied
    # to the captured trace, so that no record keeps what the caller asked to redact).
    guardrails: list[dict] | None = None
    guardrail_tokens: int = 0
    redact: Callable[[str], str] | None = None

    @property
    def model(self) -> str:
        return self.request.model
