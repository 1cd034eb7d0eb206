"""The bounds of one response's tool loop: model steps, generated tokens, wall time.

A response that reaches one ends with LoopBoundReached (what it made so far is kept), whose
message names the bound and the setting that raises it. The token bound counts the tokens the
model generated over the response's steps; it is checked before each step (a step is never cut
short by it, except that a step asking for more max_tokens than the budget left gets what is left).
"""

import time
from dataclasses import dataclass

from plateforme.agents.errors import AgentsError


class LoopBoundReached(AgentsError):
    """The response reached a bound of its loop; `bound`: "steps" | "tokens" | "seconds"."""

    def __init__(self, bound: str, message: str):
        super().__init__(400, message, None)
        self.bound = bound


class ForcedCallCut(AgentsError):
    """A step that had to call a tool (forced tool_choice) stopped at its max_tokens before the
    call ended: what it wrote is no call and no answer, so it is not given as the answer."""

    def __init__(self, max_tokens: int | None):
        limit = f"max_tokens ({max_tokens})" if max_tokens is not None else "its token limit"
        super().__init__(400, f"the model's forced tool call was cut at {limit} before it ended, so no tool ran; "
                              "raise completion_args.max_tokens, or let the model choose (tool_choice auto)",
                         "completion_args.max_tokens")


@dataclass(frozen=True)
class LoopLimits:
    max_steps: int = 8
    max_tokens: int = 4096
    max_seconds: float = 300.0

    @classmethod
    def from_settings(cls, settings) -> "LoopLimits":
        return cls(settings.agent_max_steps, settings.agent_max_tokens, settings.agent_max_seconds)

    def budget(self) -> "LoopBudget":
        return LoopBudget(self)


class LoopBudget:
    """What one response has used of its limits, as it runs."""

    def __init__(self, limits: LoopLimits):
        self.limits = limits
        self.steps = 0
        self.tokens = 0
        self.deadline = time.monotonic() + limits.max_seconds  # the event loop's clock too

    def remaining_seconds(self) -> float:
        return self.deadline - time.monotonic()

    def remaining_tokens(self) -> int:
        return self.limits.max_tokens - self.tokens

    def step_max_tokens(self, asked: int | None) -> int | None:
        """The max_tokens of the next step: what was asked, within the tokens left (None: the model's own bound)."""
        return None if asked is None else max(1, min(asked, self.remaining_tokens()))

    def begin_step(self) -> None:
        """Count one more model step; LoopBoundReached when the response may take no more."""
        if self.steps >= self.limits.max_steps:
            raise LoopBoundReached("steps", (
                f"the response reached its bound of {self.limits.max_steps} model steps with tool calls still to "
                "answer; the operator raises it with PLATEFORME_AGENT_MAX_STEPS, or ask for less in one message"))
        if self.remaining_tokens() <= 0:
            raise self.tokens_reached()
        self.check_time()
        self.steps += 1

    def tokens_reached(self) -> LoopBoundReached:
        return LoopBoundReached("tokens", (
            f"the response reached its bound of {self.limits.max_tokens} generated tokens ({self.tokens} "
            "generated over its model steps); the operator raises it with PLATEFORME_AGENT_MAX_TOKENS"))

    def seconds_reached(self) -> LoopBoundReached:
        return LoopBoundReached("seconds", (
            f"the response reached its bound of {self.limits.max_seconds:g} seconds; the operator raises it "
            "with PLATEFORME_AGENT_MAX_SECONDS"))

    def check_time(self) -> None:
        if self.remaining_seconds() <= 0:
            raise self.seconds_reached()
