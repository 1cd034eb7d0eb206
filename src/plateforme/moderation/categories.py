"""Moderation category sets: the nine of mistral-moderation-2411, the eleven of -2603.

The platform's providers score the eleven categories of 2603 (`CATEGORIES_2603`); a 2411 answer
is derived from them (`dangerous_and_criminal_content` is the larger of `dangerous` and
`criminal`; `jailbreaking` has no 2411 category). Each set's default thresholds are shown on its
model card; a guardrail's `custom_category_thresholds` override them.
"""

from dataclasses import dataclass

CATEGORIES_2603 = ("sexual", "hate_and_discrimination", "violence_and_threats", "dangerous", "criminal",
                   "selfharm", "health", "financial", "law", "pii", "jailbreaking")
CATEGORIES_2411 = ("sexual", "hate_and_discrimination", "violence_and_threats", "dangerous_and_criminal_content",
                   "selfharm", "health", "financial", "law", "pii")


@dataclass(frozen=True)
class CategorySet:
    model: str                       # the served model name (mistral-moderation-2411 | -2603)
    categories: tuple[str, ...]
    thresholds: dict[str, float]     # default threshold per category

    def from_2603(self, scores: dict[str, float]) -> dict[str, float]:
        """This set's scores from scores over the eleven 2603 categories."""
        if self.categories == CATEGORIES_2603:
            return {c: scores[c] for c in CATEGORIES_2603}
        merged = dict(scores)
        merged["dangerous_and_criminal_content"] = max(scores["dangerous"], scores["criminal"])
        return {c: merged[c] for c in self.categories}
