"""Guards: checks a request must pass before any generation (guardrails plug in here).

A guard raises `RequestRefused` to refuse a request: it is answered 403 in Mistral's error shape,
costs no generation and no tokens, and is counted as `refused` in the generation-end metric. A
refusal with `record=True` (guardrails) is also kept: a usage row marked blocked (no tokens) and,
when the workspace captures traces, a trace marked blocked with the refusal as its answer.

A guard may also check the answer (an `OutputGuard`): `check_output` the whole answer of a
non-streamed request (raising RequestRefused: 403, its tokens billed, recorded blocked), and
`watch_stream` wraps a stream's events (raising RequestRefused mid-stream: the stream stops there).
"""

from collections.abc import AsyncIterator
from typing import Protocol, runtime_checkable

from plateforme.pipeline.call import GenerationCall

# The name of the guard that checks a request's `guardrails` (guardrails/guard.py): a request that
# has some is refused when no such guard is installed, never served unchecked.
GUARDRAILS = "guardrails"


class RequestRefused(Exception):
    """A guard refused the request; `reason` says which check and why. `record`: keep the refusal
    in usage and traces; `report`: what the guard checked (echoed with the error, and traced);
    `answer`: when the output was refused, the answer so far (one text per choice), withheld."""

    def __init__(self, guard: str, reason: str, record: bool = False, report: list[dict] | None = None):
        super().__init__(f"request refused by {guard}: {reason}")
        self.guard, self.reason = guard, reason
        self.record, self.report = record, report
        self.answer: list[str] | None = None


class RequestGuard(Protocol):
    name: str

    async def check(self, call: GenerationCall) -> None:
        """Raise RequestRefused to refuse `call`; return to let it through."""


@runtime_checkable
class OutputGuard(Protocol):
    name: str

    async def check_output(self, call: GenerationCall, result) -> None:
        """Raise RequestRefused to withhold `result` (a Completion) from the caller."""

    def watch_stream(self, call: GenerationCall, events: AsyncIterator) -> AsyncIterator:
        """`events` (deltas, then a Usage), checked as they go (or `events` itself when unchecked)."""
