"""`action: "redact"`: the PII of a request's messages replaced before generation.

Every message's text (system, user, assistant turns of the history, tool results) goes through
the rule-based PII finder (moderation/pii.py: validated numbers only) and each match becomes its
kind's label ([EMAIL], [PHONE], [IBAN], [CARD], [NIR], [SIRET], [SIREN]).
"""

from collections import Counter

from plateforme.moderation.pii import find_pii, redact


def redact_text(text: str) -> str:
    return redact(text) if text else text


def redact_messages(messages: list[dict]) -> tuple[list[dict], dict[str, int]]:
    """The messages with their PII replaced (new dicts where something changed), and how many
    of each kind were replaced."""
    counts: Counter = Counter()
    out = []
    for message in messages:
        content = message.get("content")
        if isinstance(content, str) and content:
            matches = find_pii(content)
            if matches:
                counts.update(m.kind for m in matches)
                message = {**message, "content": redact(content, matches)}
        out.append(message)
    return out, dict(counts)
