"""The bounds of one response's tool loop: model steps, generated tokens, wall time.

OWNER: engineer C (issue 14).
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class LoopLimits:
    max_steps: int = 8
    max_tokens: int = 4096
    max_seconds: float = 300.0

    @classmethod
    def from_settings(cls, settings) -> "LoopLimits":
        return cls(settings.agent_max_steps, settings.agent_max_tokens, settings.agent_max_seconds)
