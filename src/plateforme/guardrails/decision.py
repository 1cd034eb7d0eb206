"""One rule applied to one text's scores: which categories were checked, which crossed.

Scores come from the moderation service over the eleven categories of mistral-moderation-2603;
a `moderation_llm_v1` rule reads them in the nine of 2411 (its CategorySet merges dangerous and
criminal). A category crosses when its score is above its threshold (Mistral: "if any score is
above the threshold"): the rule's custom threshold, else the model card's default.
"""

from dataclasses import dataclass, field

from plateforme.guardrails.config import GuardrailRule
from plateforme.moderation.categories import CategorySet


@dataclass
class Verdict:
    rule: GuardrailRule
    stage: str                                   # input | output
    thresholds: dict[str, float]                 # of the categories checked
    scores: dict[str, float]                     # every category of the rule's set
    crossed: list[str]                           # checked categories above their threshold
    error: str | None = None                     # the check failed (the moderation service said why)
    redacted: dict[str, int] = field(default_factory=dict)  # PII kind -> how many replaced

    @property
    def blocks(self) -> bool:
        """Whether this verdict refuses the request."""
        if self.error is not None:
            return self.rule.block_on_error
        return self.rule.action == "block" and bool(self.crossed)

    def report(self) -> dict:
        """The verdict as the response echoes it (`guardrails: [...]`)."""
        out = {"index": self.rule.index, "type": self.rule.version, "model": self.rule.model_name,
               "stage": self.stage, "action": self.rule.action, "blocked": self.blocks}
        if self.error is not None:
            out["error"] = self.error
            return out
        out.update(checked=list(self.thresholds), thresholds=self.thresholds,
                   category_scores={c: round(s, 6) for c, s in self.scores.items()},
                   categories={c: c in self.crossed for c in self.thresholds}, crossed=self.crossed)
        if self.rule.action == "redact":
            out["redacted"] = self.redacted
        return out

    def reason(self) -> str:
        """Why it blocks, for the 403's message."""
        where = f"{self.rule.param} (action {self.rule.action})"
        if self.error is not None:
            return (f"the {self.stage} could not be checked by {where} and block_on_error is true: {self.error}; "
                    "retry, or set block_on_error false to let requests through when the check fails")
        crossed = ", ".join(f"{c} {self.scores[c]:.2f} > {self.thresholds[c]:.2f}" for c in self.crossed)
        return (f"the {self.stage} crossed the thresholds of {where}: {crossed}; change the content, or raise "
                "the guardrail's custom_category_thresholds for these categories")


def judge(rule: GuardrailRule, stage: str, scores_2603: dict[str, float], category_set: CategorySet) -> Verdict:
    """Apply `rule` to one text's scores; `category_set`: the rule's model's (its default thresholds)."""
    scores = category_set.from_2603(scores_2603)
    checked = [c for c in rule.categories if c in rule.thresholds] if rule.ignore_other_categories \
        else list(rule.categories)
    thresholds = {c: rule.thresholds.get(c, category_set.thresholds[c]) for c in checked}
    crossed = [c for c in checked if scores[c] > thresholds[c]]
    return Verdict(rule, stage, thresholds, scores, crossed)


def worst(verdicts: list[Verdict]) -> Verdict:
    """Of one rule's verdicts on several texts (the choices of an answer), the one that decides:
    a failure, else a blocking one, else the one with the most categories crossed."""
    return max(verdicts, key=lambda v: (v.error is not None, v.blocks, len(v.crossed)))
