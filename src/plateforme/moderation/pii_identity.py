"""PII that identifies a person beyond contact and bank details: US SSN, UK NHS and National
Insurance numbers, passport numbers, dates of birth, number plates (pii.find_pii uses them).

Each is validated (SSN's areas, NHS's mod-11 digit, NINO's letters, a real calendar date); those
whose shape alone says little (a passport or NHS number, a date, a plate) are only taken within
40 characters after the words that say what they are ("passport", "né le", "DOB", "immatriculée").
"""

import datetime
import re

from plateforme.moderation import pii_checks as checks

_AFTER = r"[^\d\n]{0,40}?"   # what may stand between the word and the number, on one line
_END = r"(?![\w]|[.,]\d)"

_SSN = re.compile(r"(?<![\w-])(\d{3})-(\d{2})-(\d{4})(?![\w-])")
_SSN_NAMED = re.compile(r"(?i:\b(?:ssn|social\s+security(?:\s+number)?)\b)" + _AFTER
                        + r"((\d{3}) ?(\d{2}) ?(\d{4}))" + _END)
_NHS_NAMED = re.compile(r"\bNHS\b" + _AFTER + r"((\d{3}) ?(\d{3}) ?(\d{4}))" + _END)
_NINO = re.compile(r"(?<![\w])([A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z]) ?(\d{2}) ?(\d{2}) ?(\d{2}) ?([A-D])(?![\w])")
_PASSPORT_NAMED = re.compile(r"(?i:\b(?:passport|passeport|reisepass|pasaporte)s?\b)" + _AFTER
                             + r"(\d{2}[A-Z]{2}\d{5}|[A-Z]{1,2}\d{6,8}|\d{9})" + _END)
_MONTH_NAMES = "|".join(sorted(checks.MONTHS, key=len, reverse=True))
_DATE = (r"(?P<d1>\d{1,2})[/.-](?P<m1>\d{1,2})[/.-](?P<y1>\d{4})"
         r"|(?P<y2>\d{4})-(?P<m2>\d{2})-(?P<d2>\d{2})"
         rf"|(?P<d3>\d{{1,2}})(?:er|st|nd|rd|th)?\s+(?P<m3>{_MONTH_NAMES})\.?\s+(?P<y3>\d{{4}})"
         rf"|(?P<m4>{_MONTH_NAMES})\.?\s+(?P<d4>\d{{1,2}})(?:st|nd|rd|th)?,?\s+(?P<y4>\d{{4}})")
_BIRTH_DATE = re.compile(
    r"(?i:\b(?:n[ée]e?(?:\s*\(e\))?\s+le|date\s+de\s+naissance|born(?:\s+on)?|date\s+of\s+birth|d\.?o\.?b"
    r"|birth\s*date|geboren(?:\s+am)?)(?![^\W\d_]))" + _AFTER + rf"(?P<date>(?i:{_DATE}))" + _END)
_PLATE_NAMED = re.compile(
    r"(?i:\b(?:immatricul\w*|plaque|plates?)(?![^\W\d_]))[^\n]{0,40}?"
    r"(?<![\w-])([A-HJ-NP-TV-Z]{2}-\d{3}-[A-HJ-NP-TV-Z]{2}|[A-HJ-PR-Y]{2}\d{2} ?[A-HJ-PR-Z]{3})(?![\w-])")


def _named(lower: str, words: tuple[str, ...], pattern: re.Pattern, text: str):
    """`pattern`'s matches in `text`, looked for only when one of the words naming them is there."""
    return pattern.finditer(text) if any(w in lower for w in words) else ()


def _ssns(text: str, lower: str, match_type):
    for m in _SSN.finditer(text):
        if checks.ssn_valid(*m.groups()):
            yield match_type("ssn", m.start(), m.end(), m.group())
    for m in _named(lower, ("ssn", "social"), _SSN_NAMED, text):
        if checks.ssn_valid(m.group(2), m.group(3), m.group(4)):
            yield match_type("ssn", m.start(1), m.end(1), m.group(1))


def _nhs_numbers(text: str, lower: str, match_type):
    for m in _named(lower, ("nhs",), _NHS_NAMED, text):
        if checks.nhs_valid(m.group(2) + m.group(3) + m.group(4)):
            yield match_type("nhs", m.start(1), m.end(1), m.group(1))


def _ninos(text: str, lower: str, match_type):
    for m in _NINO.finditer(text):
        if checks.nino_valid(m.group(1)):
            yield match_type("nino", m.start(), m.end(), m.group())


def _passports(text: str, lower: str, match_type):
    for m in _named(lower, ("pass", "pasaporte"), _PASSPORT_NAMED, text):
        yield match_type("passport", m.start(1), m.end(1), m.group(1))


def _month(value: str) -> int:
    return int(value) if value.isdigit() else checks.MONTHS[value.lower()]


_BIRTH_WORDS = ("né", "ne le", "nee le", "naissance", "born", "birth", "dob", "d.o.b", "geboren")


def _birth_dates(text: str, lower: str, match_type):
    this_year = datetime.date.today().year
    for m in _named(lower, _BIRTH_WORDS, _BIRTH_DATE, text):
        g = m.groupdict()
        n = next(i for i in "1234" if g[f"y{i}"])
        year, month, day = int(g[f"y{n}"]), _month(g[f"m{n}"]), int(g[f"d{n}"])
        # 04/07/1988: day first (France, the UK) or month first (the US): either real date will do.
        if checks.birth_date_valid(year, month, day, this_year) or \
                (n == "1" and checks.birth_date_valid(year, day, month, this_year)):
            yield match_type("birth_date", m.start("date"), m.end("date"), m.group("date"))


def _plates(text: str, lower: str, match_type):
    for m in _named(lower, ("immatricul", "plaque", "plate"), _PLATE_NAMED, text):
        if "-000-" not in m.group(1) and not m.group(1).startswith("SS-"):
            yield match_type("plate", m.start(1), m.end(1), m.group(1))


# In the order find_pii prefers them where two kinds claim the same characters.
IDENTITY_DETECTORS = (("nhs", _nhs_numbers), ("ssn", _ssns), ("nino", _ninos), ("passport", _passports),
                      ("birth_date", _birth_dates), ("plate", _plates))
