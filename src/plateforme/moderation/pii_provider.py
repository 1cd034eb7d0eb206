"""The rule-based PII provider: the `pii` category is 1.0 when a validated match is found, else 0.0.

It reads the judged text only (a conversation's earlier turns are not its business: PII in them
was judged when they were sent), costs no tokens, and never fails. An organisation's role address
(contact@, support@, noreply@...) is no person's data: it does not count for the score (redact()
still replaces it, as it replaces every email).
"""

import asyncio

from plateforme.moderation.pii import PiiMatch, find_pii, redact
from plateforme.moderation.provider import ModerationInput, ProviderScores
from plateforme.tenancy.principal import Principal

# Above this many characters in one call, the rules run in a worker thread, off the event loop.
_INLINE_CHARS = 20_000


# Local parts of addresses that reach a function of an organisation, not a person.
ROLE_ACCOUNTS = frozenset("""
    abuse accounting accounts accueil admin administration billing bonjour booking careers clients
    commercial comptabilite compta contact contacts customercare dpo facturation hello help helpdesk hr
    info infos jobs juridique legal mailer-daemon marketing media newsletter no-reply noreply office
    postmaster presse press privacy recrutement reservation reservations rgpd rh sales sav secretariat
    security service services support team ventes webmaster
""".split())


def is_personal(match: PiiMatch) -> bool:
    """Whether a match is a person's data (every match but an organisation's role address)."""
    return match.kind != "email" or match.text.split("@", 1)[0].lower() not in ROLE_ACCOUNTS


def _scores(texts: list[str]) -> list[dict[str, float]]:
    return [{"pii": 1.0 if any(is_personal(m) for m in find_pii(text)) else 0.0} for text in texts]


class PiiProvider:
    def __init__(self, name: str = "pii"):
        self.name = name
        self.categories = frozenset({"pii"})

    async def score(self, who: Principal, items: list[ModerationInput]) -> ProviderScores:
        texts = [item.text for item in items]
        if sum(map(len, texts)) > _INLINE_CHARS:
            return ProviderScores(await asyncio.to_thread(_scores, texts), prompt_tokens=0)
        return ProviderScores(_scores(texts), prompt_tokens=0)

    @staticmethod
    def find(text: str) -> list[PiiMatch]:
        return find_pii(text)

    @staticmethod
    def redact(text: str) -> str:
        """`text` with every validated match replaced by its label ([EMAIL], [IBAN]...)."""
        return redact(text)
