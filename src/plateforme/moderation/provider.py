"""What every moderation provider implements: scores in [0, 1] for categories of the 2603 set.

A provider scores some categories (`categories`); the moderation service combines, per category,
the providers the operator configured for it (the largest score wins). Providers: the default
classifier head over the default embeddings, rule-based PII, an LLM judge, a guard model.
"""

from dataclasses import dataclass, field
from typing import Protocol

from plateforme.tenancy.principal import Principal


@dataclass(frozen=True)
class ModerationInput:
    text: str                    # what is judged (a text, or a conversation's last turn)
    # The turns before it, oldest first: [{"role": "user" | "assistant" | "system" | "tool", "content": str}]
    context: tuple[dict, ...] = field(default_factory=tuple)
    # The judged turn's role when it is a conversation's last turn (rendered with its context).
    role: str = "user"


@dataclass
class ProviderScores:
    scores: list[dict[str, float]]   # one {category: score} per input, for the provider's categories
    prompt_tokens: int = 0           # tokens the provider read (metered as the request's usage)
    completion_tokens: int = 0       # tokens it generated (an LLM judge's verdicts), metered too


class ModerationProvider(Protocol):
    name: str                        # as in the moderation config ("default", "pii", "judge", ...)
    categories: frozenset[str]       # the 2603 categories it scores

    async def score(self, who: Principal, items: list[ModerationInput]) -> ProviderScores:
        """Scores for every input, in order. Raises ModerationProviderError when it cannot answer."""


class ModerationProviderError(RuntimeError):
    """A provider could not score (its server is down, its answer unreadable): the message says why."""

    def __init__(self, provider: str, reason: str):
        super().__init__(f"moderation provider {provider!r} failed: {reason}")
        self.provider, self.reason = provider, reason
