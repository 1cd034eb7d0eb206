"""Model cards of the moderation models, in BaseModelCard's shape (GET /v1/models).

A moderation card has every capability false but `moderation`, and two fields of its own:
`categories` (its category set, in order) and `default_thresholds` (per category: the score from
which the category is flagged, unless a guardrail's `custom_category_thresholds` says otherwise).
"""

from plateforme.moderation.categories import CategorySet

# Cards' `created`: 2024-11-01 and 2026-03-01, the months of the model names.
CREATED = {"mistral-moderation-2411": 1730419200, "mistral-moderation-2603": 1772323200}
CAPABILITIES = ("completion_chat", "function_calling", "reasoning", "completion_fim", "fine_tuning", "vision", "ocr",
                "classification", "audio", "embedding")


def moderation_card(category_set: CategorySet, aliases: list[str], window: int, description: str) -> dict:
    capabilities = dict.fromkeys(CAPABILITIES, False)
    capabilities["moderation"] = True
    return {
        "id": category_set.model, "object": "model", "created": CREATED.get(category_set.model, 0),
        "owned_by": "plateforme", "capabilities": capabilities, "name": category_set.model,
        "description": f"{len(category_set.categories)} categories: {description}",
        "max_context_length": window, "aliases": list(aliases), "deprecation": None,
        "default_model_temperature": None, "type": "base",
        "categories": list(category_set.categories),
        "default_thresholds": {c: category_set.thresholds[c] for c in category_set.categories},
    }
