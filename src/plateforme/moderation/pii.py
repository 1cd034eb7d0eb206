"""Rule-based PII: emails, phone numbers, IBANs, card numbers, French NIR, SIRET and SIREN (and,
in pii_identity.py, US SSN, UK NHS and NI numbers, passports, dates of birth, number plates).

    matches = find_pii("Écrivez à jeanne@exemple.fr, IBAN FR76 3000 6000 0112 3456 7890 189")
    redact(text)  # -> "Écrivez à [EMAIL], IBAN [IBAN]"

Every number is checked by its validator before it is reported (the checks are in
`pii_checks.py`): an IBAN's mod-97 checksum and its country's length, a card's Luhn digit with a
network's prefix and length, a NIR's key (97 - n mod 97, Corsica's 2A/2B), a SIRET's or SIREN's
Luhn digit (La Poste's establishments: the sum of the digits is a multiple of 5). A number that
fails is not reported. Numbers that ordinary text is full of are only taken with what says what
they are: a SIREN (9 digits) or an ungrouped SIRET (14 digits) only within 40 characters after
the word SIREN, SIRET or RCS (on the same line); a SIRET grouped 3-3-3-5 stands alone.
"""

import re
from dataclasses import dataclass

from plateforme.moderation import pii_checks as checks
from plateforme.moderation.pii_identity import IDENTITY_DETECTORS

# What each kind is replaced by in redact().
REDACTION_LABELS = {"email": "[EMAIL]", "phone": "[PHONE]", "iban": "[IBAN]", "card": "[CARD]",
                    "nir": "[NIR]", "siret": "[SIRET]", "siren": "[SIREN]", "ssn": "[SSN]", "nhs": "[NHS]",
                    "nino": "[NINO]", "passport": "[PASSPORT]", "birth_date": "[BIRTH_DATE]", "plate": "[PLATE]"}
PII_KINDS = tuple(REDACTION_LABELS)


@dataclass(frozen=True)
class PiiMatch:
    kind: str     # one of PII_KINDS
    start: int    # offsets into the text: text[start:end] == self.text
    end: int
    text: str


_EMAIL = re.compile(
    r"(?<![\w.%+-])[\w%+-](?:[\w.%+-]{0,62}[\w%+-])?"
    r"@(?:[^\W_](?:(?:[^\W_]|-){0,61}[^\W_])?\.)+[^\W\d_]{2,24}(?![\w-]|\.[^\W_])")
# Two letters, two check digits, then groups of 4 (or one run); the country fixes the length.
_IBAN = re.compile(r"(?<![\w])[A-Za-z]{2}\d{2}(?:(?: ?[A-Za-z0-9]{4}){2,7}(?: ?[A-Za-z0-9]{1,3})?"
                   r"|[A-Za-z0-9]{11,30})(?![\w])")
_CARD = re.compile(r"(?<![\w.,])(?:\d{13,19}|\d{4}([ -])\d{2,6}(?:\1\d{2,6}){1,4})(?![\w]|[.,]\d)")
_NIR = re.compile(r"(?<![\w.,])([1-478])( ?)(\d{2})\2(\d{2})\2(\d{2}|2[ABab])\2(\d{3})\2(\d{3})\2?(\d{2})"
                  r"(?![\w]|[.,]\d)")
_SIRET_GROUPED = re.compile(r"(?<![\w.,])(\d{3})([ .])(\d{3})\2(\d{3})\2(\d{5})(?![\w]|[.,]\d)")
_SIRET_NAMED = re.compile(r"(?i:\bsiret\b)[^\d\n]{0,40}?"
                          r"((\d{3})([ .]?)(\d{3})\3(\d{3})\3?(\d{5}))(?![\w]|[.,]\d)")
_SIREN_NAMED = re.compile(r"(?i:\b(?:siren|rcs)\b)[^\d\n]{0,40}?"
                          r"((\d{3})([ .]?)(\d{3})\3(\d{3}))(?![\w]|[.,]\d|[ .]\d)")
_PHONE_FR = re.compile(r"(?<![\w+.,])(?<!\d[ .-])(?:(?:\+|00)33[ .-]?(?:\(0\)[ .-]?)?|0)[1-9]"
                       r"(?:([ .-]?)\d{2})(?:\1\d{2}){3}(?![\w]|[.,]\d|[ .-]\d)")
_PHONE_INTL = re.compile(r"(?<![\w+])\+[1-9]\d{0,2}(?:[ .-]?\(0\))?(?:[ .-]?\(?\d{1,5}\)?){1,6}(?![\w]|[.,]\d)")
# The UK's national writings (07700 900123, 0117 496 0321, 020 7946 0958) and Irish mobiles.
_PHONE_UK_IE = re.compile(r"(?<![\w+.,])(?<!\d[ .-])(?:0(?:7\d{3} ?\d{6}|[123]\d{3} \d{6}|[123]\d{2} \d{3} \d{4}"
                          r"|[123]\d \d{4} \d{4})|08[35-9] ?\d{3} ?\d{4})(?![\w]|[.,]\d|[ .-]\d)")
_PHONE_NANP = re.compile(r"(?<![\w+(.,-])(?:\((\d{3})\) ?|(\d{3})([-.]))(\d{3})(?(3)\3|[-.])(\d{4})(?![\w]|[.,-]\d)")


def _emails(text: str):
    for m in _EMAIL.finditer(text):
        local = m.group().split("@", 1)[0]
        if ".." not in local:
            yield PiiMatch("email", m.start(), m.end(), m.group())


def _iban_in(written: str) -> str | None:
    """The IBAN `written` starts with, cut at its country's length on a group's end, if valid."""
    expected, count = checks.IBAN_LENGTHS.get(written[:2].upper()), 0
    for end, char in enumerate(written, 1):
        count += char != " "
        if count == expected:
            if end < len(written) and written[end] != " ":
                return None  # the length ends inside a group: not this country's IBAN
            candidate = written[:end]
            return candidate if checks.iban_valid(candidate.replace(" ", "").upper()) else None
    return None


def _ibans(text: str):
    """IBANs, and the spans of IBAN-shaped strings that failed (their digits are no card or phone)."""
    found, shaped = [], []
    for m in _IBAN.finditer(text):
        iban = _iban_in(m.group())
        if iban is None:
            shaped.append((m.start(), m.end()))
        else:
            found.append(PiiMatch("iban", m.start(), m.start() + len(iban), iban))
            shaped.append((m.start(), m.start() + len(iban)))
    return found, shaped


def _cards(text: str):
    for m in _CARD.finditer(text):
        if checks.card_valid(re.sub(r"[ -]", "", m.group())):
            yield PiiMatch("card", m.start(), m.end(), m.group())


def _nirs(text: str):
    for m in _NIR.finditer(text):
        sex, _, year, month, department, commune, order, key = m.groups()
        if checks.nir_valid(sex, year, month, department.upper(), commune, order, key):
            yield PiiMatch("nir", m.start(), m.end(), m.group())


def _sirets(text: str, lower: str):
    for m in _SIRET_GROUPED.finditer(text):
        if checks.siret_valid(m.group(1) + m.group(3) + m.group(4) + m.group(5)):
            yield PiiMatch("siret", m.start(), m.end(), m.group())
    for m in _SIRET_NAMED.finditer(text) if "siret" in lower else ():
        digits = m.group(2) + m.group(4) + m.group(5) + m.group(6)
        if checks.siret_valid(digits):
            yield PiiMatch("siret", m.start(1), m.end(1), m.group(1))


def _sirens(text: str, lower: str):
    for m in _SIREN_NAMED.finditer(text) if "siren" in lower or "rcs" in lower else ():
        if checks.luhn_valid(m.group(2) + m.group(4) + m.group(5)):
            yield PiiMatch("siren", m.start(1), m.end(1), m.group(1))


def _phones(text: str):
    for m in _PHONE_FR.finditer(text):
        yield PiiMatch("phone", m.start(), m.end(), m.group())
    for m in _PHONE_INTL.finditer(text):
        if checks.international_phone_valid(m.group()):
            yield PiiMatch("phone", m.start(), m.end(), m.group())
    for m in _PHONE_UK_IE.finditer(text):
        yield PiiMatch("phone", m.start(), m.end(), m.group())
    for m in _PHONE_NANP.finditer(text):
        area = m.group(1) or m.group(2)
        if checks.nanp_valid(area, m.group(4)):
            yield PiiMatch("phone", m.start(), m.end(), m.group())


def _overlaps(match: PiiMatch, spans) -> bool:
    return any(match.start < end and start < match.end for start, end in spans)


_DIGIT = re.compile(r"\d")
# No-break and thin spaces (French typography, copied text) separate groups as a space does; one
# character for one, so offsets hold.
_SPACES = str.maketrans({"\u00a0": " ", "\u202f": " ", "\u2009": " ", "\u2007": " "})


def find_pii(text: str) -> list[PiiMatch]:
    """Every validated PII match in `text`, in order, none overlapping another.

    Where two kinds claim the same characters, the more specific wins: email, IBAN, NIR, SIRET,
    card, NHS, SSN, NINO, passport, SIREN, date of birth, plate, phone."""
    original, text = text, text.translate(_SPACES)
    emails = list(_emails(text)) if "@" in text else []
    if not _DIGIT.search(text):
        return emails  # every other kind has digits
    lower = text.lower()  # the words that name numbers are looked for before the numbers
    ibans, iban_shaped = _ibans(text)
    identity = {kind: list(detect(text, lower, PiiMatch)) for kind, detect in IDENTITY_DETECTORS}
    chosen: list[PiiMatch] = []
    for kind_matches in (emails, ibans, list(_nirs(text)), list(_sirets(text, lower)), list(_cards(text)),
                         identity["nhs"], identity["ssn"], identity["nino"], identity["passport"],
                         list(_sirens(text, lower)), identity["birth_date"], identity["plate"], list(_phones(text))):
        for match in sorted(kind_matches, key=lambda m: (m.start, -m.end)):
            if match.kind not in ("email", "iban") and _overlaps(match, iban_shaped):
                continue
            if not _overlaps(match, [(c.start, c.end) for c in chosen]):
                chosen.append(match)
    return [PiiMatch(m.kind, m.start, m.end, original[m.start:m.end]) for m in sorted(chosen, key=lambda m: m.start)]


def redact(text: str, matches: list[PiiMatch] | None = None) -> str:
    """`text` with each match (found by find_pii when not given) replaced by its kind's label."""
    if matches is None:
        matches = find_pii(text)
    parts, at = [], 0
    for match in sorted(matches, key=lambda m: m.start):
        if match.start < at:
            continue  # overlapping matches given by the caller: the first one wins
        parts += [text[at:match.start], REDACTION_LABELS[match.kind]]
        at = match.end
    parts.append(text[at:])
    return "".join(parts)
