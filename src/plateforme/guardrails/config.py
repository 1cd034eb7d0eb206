"""A request's `guardrails`, parsed and checked: Mistral's GuardrailConfig, plus two extensions.

    [{"block_on_error": false,
      "moderation_llm_v2": {"custom_category_thresholds": {"pii": 0.5}, "ignore_other_categories": false,
                            "action": "block", "apply_to": ["input", "output"]}}]

Each `moderation_llm_v1` (the nine categories of mistral-moderation-2411) or `moderation_llm_v2`
(the eleven of mistral-moderation-2603) becomes one GuardrailRule. Mistral's fields:
`model_name`, `custom_category_thresholds` (each in [0, 1], overriding the model card's default),
`ignore_other_categories` (only the categories given thresholds are checked), `action` (`none`:
report the scores, `block`: answer 403 when a score is above its threshold) and, beside them,
`block_on_error` (403 when the check itself fails). Beyond Mistral:
- `apply_to`: `["input"]` (the default, as Mistral), `["output"]` or both: the answer is checked
  too, as it streams;
- `action: "redact"`: PII found in the input (emails, phone numbers, IBAN, cards, NIR, SIRET) is
  replaced by a label naming its kind before generation; the scores are reported as with `none`.
Any mistake (an unknown category or field, a threshold out of range, a wrong type) is a
GuardrailConfigError naming the field: a 400 for the caller.
"""

from dataclasses import dataclass
from typing import Any

from plateforme.chat.errors import InvalidChatRequest
from plateforme.moderation.categories import CATEGORIES_2411, CATEGORIES_2603

VERSIONS = {"moderation_llm_v1": ("mistral-moderation-2411", CATEGORIES_2411),
            "moderation_llm_v2": ("mistral-moderation-2603", CATEGORIES_2603)}
ACTIONS = ("none", "block", "redact")
STAGES = ("input", "output")
_CONFIG_FIELDS = ("block_on_error", *VERSIONS)
_RULE_FIELDS = ("model_name", "custom_category_thresholds", "ignore_other_categories", "action", "apply_to")


class GuardrailConfigError(InvalidChatRequest):
    """A `guardrails` entry that cannot be applied; the message names the field and the fix."""


@dataclass(frozen=True)
class GuardrailRule:
    index: int                       # its position in the request's `guardrails`
    version: str                     # "moderation_llm_v1" | "moderation_llm_v2"
    model_name: str                  # the moderation model whose category set and defaults apply
    thresholds: dict[str, float]     # custom_category_thresholds (the others: the model's defaults)
    ignore_other_categories: bool
    action: str                      # none | block | redact
    apply_to: tuple[str, ...]        # ("input",), ("output",) or both
    block_on_error: bool

    @property
    def categories(self) -> tuple[str, ...]:
        return VERSIONS[self.version][1]

    @property
    def param(self) -> str:
        return f"guardrails[{self.index}].{self.version}"


def _bool(value: Any, param: str) -> bool:
    if not isinstance(value, bool):
        raise GuardrailConfigError(f"{param}: expected true or false, got {value!r}", param)
    return value


def _object(value: Any, param: str) -> dict:
    if not isinstance(value, dict):
        raise GuardrailConfigError(f"{param}: expected an object, got {value!r}", param)
    return value


def _no_unknown_fields(body: dict, known: tuple[str, ...], param: str) -> None:
    unknown = [k for k in body if k not in known]
    if unknown:
        raise GuardrailConfigError(f"{param}.{unknown[0]}: unknown field; the fields are {', '.join(known)}",
                                   f"{param}.{unknown[0]}")


def _thresholds(value: Any, categories: tuple[str, ...], param: str) -> dict[str, float]:
    if value is None:
        return {}
    out = {}
    for category, threshold in _object(value, param).items():
        where = f"{param}.{category}"
        if category not in categories:
            raise GuardrailConfigError(f"{where}: unknown category; the categories of this model are "
                                       f"{', '.join(categories)}", where)
        if threshold is None:
            continue  # as Mistral's schema allows: the model's default applies
        if isinstance(threshold, bool) or not isinstance(threshold, (int, float)):
            raise GuardrailConfigError(f"{where}: expected a number between 0 and 1, got {threshold!r}", where)
        if not 0.0 <= threshold <= 1.0:
            raise GuardrailConfigError(f"{where}: {threshold} is out of range; a threshold is between 0 and 1",
                                       where)
        out[category] = float(threshold)
    return out


def _apply_to(value: Any, param: str) -> tuple[str, ...]:
    if value is None:
        return ("input",)
    if isinstance(value, str) or not isinstance(value, list) or not value \
            or any(stage not in STAGES for stage in value):
        raise GuardrailConfigError(f"{param}: expected a non-empty list of {' and '.join(STAGES)}, got {value!r}",
                                   param)
    return tuple(stage for stage in STAGES if stage in value)


def _rule(index: int, version: str, body: dict, block_on_error: bool) -> GuardrailRule:
    param = f"guardrails[{index}].{version}"
    _no_unknown_fields(body, _RULE_FIELDS, param)
    default_model, categories = VERSIONS[version]
    model_name = body.get("model_name") or default_model
    if not isinstance(model_name, str):
        raise GuardrailConfigError(f"{param}.model_name: expected a moderation model's name", f"{param}.model_name")
    action = body.get("action") or "none"
    if action not in ACTIONS:
        raise GuardrailConfigError(f"{param}.action: {action!r} is not an action; expected one of "
                                   f"{', '.join(ACTIONS)}", f"{param}.action")
    apply_to = _apply_to(body.get("apply_to"), f"{param}.apply_to")
    if action == "redact" and "output" in apply_to:
        raise GuardrailConfigError(f"{param}.apply_to: action redact replaces PII in the input only; use apply_to "
                                   "[\"input\"] for it, and another rule (action block or none) for the output",
                                   f"{param}.apply_to")
    ignore = body.get("ignore_other_categories")
    return GuardrailRule(
        index=index, version=version, model_name=model_name,
        thresholds=_thresholds(body.get("custom_category_thresholds"), categories,
                               f"{param}.custom_category_thresholds"),
        ignore_other_categories=False if ignore is None else _bool(ignore, f"{param}.ignore_other_categories"),
        action=action, apply_to=apply_to, block_on_error=block_on_error)


def parse_guardrails(raw: Any) -> list[GuardrailRule]:
    """The rules of a request's `guardrails` (None or [] : none); GuardrailConfigError on any mistake."""
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise GuardrailConfigError(f"guardrails: expected a list of guardrail configs, got {raw!r}", "guardrails")
    rules = []
    for index, entry in enumerate(raw):
        param = f"guardrails[{index}]"
        entry = _object(entry, param)
        _no_unknown_fields(entry, _CONFIG_FIELDS, param)
        block_on_error = entry.get("block_on_error")
        block_on_error = False if block_on_error is None else _bool(block_on_error, f"{param}.block_on_error")
        versions = [v for v in VERSIONS if entry.get(v) is not None]
        if not versions:
            raise GuardrailConfigError(f"{param}: nothing to check; give moderation_llm_v1 or moderation_llm_v2",
                                       param)
        for version in versions:
            rules.append(_rule(index, version, _object(entry[version], f"{param}.{version}"), block_on_error))
    return rules
