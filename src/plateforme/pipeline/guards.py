"""Guards: checks a request must pass before any generation (guardrails plug in here).

A guard raises `RequestRefused` to refuse a request: it is answered 403 in Mistral's error shape,
costs no generation and no tokens, and is counted as `refused` in the generation-end metric.
"""

from typing import Protocol

from plateforme.pipeline.call import GenerationCall


class RequestRefused(Exception):
    """A guard refused the request; `reason` says which check and why."""

    def __init__(self, guard: str, reason: str):
        super().__init__(f"request refused by {guard}: {reason}")
        self.guard, self.reason = guard, reason


class RequestGuard(Protocol):
    name: str

    async def check(self, call: GenerationCall) -> None:
        """Raise RequestRefused to refuse `call`; return to let it through."""
