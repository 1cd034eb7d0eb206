"""The refusal of a request its guardrails blocked: answered 403, recorded as blocked."""

from plateforme.guardrails.decision import Verdict
from plateforme.pipeline.guards import GUARDRAILS as GUARD_NAME
from plateforme.pipeline.guards import RequestRefused


class GuardrailBlocked(RequestRefused):
    """The input (before any generation) or the output (the answer, or the stream so far) crossed
    a blocking rule, or could not be checked by a rule with block_on_error."""

    def __init__(self, stage: str, blocking: list[Verdict], report: list[dict]):
        super().__init__(GUARD_NAME, "; ".join(v.reason() for v in blocking), record=True, report=report)
        self.stage = stage
        self.categories = sorted({c for v in blocking for c in v.crossed})
