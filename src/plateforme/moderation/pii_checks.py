"""The validators behind pii.find_pii: checksums and plausibility of each kind of number."""

import datetime
import re

# IBAN length per country (SWIFT's IBAN registry).
IBAN_LENGTHS = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22, "BI": 27,
    "BR": 29, "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DJ": 27, "DK": 18, "DO": 28,
    "EE": 20, "EG": 29, "ES": 24, "FI": 18, "FK": 18, "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23,
    "GL": 18, "GR": 27, "GT": 28, "HR": 21, "HU": 28, "IE": 22, "IL": 23, "IQ": 23, "IS": 26, "IT": 27,
    "JO": 30, "KW": 30, "KZ": 20, "LB": 28, "LC": 32, "LI": 21, "LT": 20, "LU": 20, "LV": 21, "LY": 25,
    "MC": 27, "MD": 24, "ME": 22, "MK": 19, "MN": 20, "MR": 27, "MT": 31, "MU": 30, "NL": 18, "NO": 15,
    "OM": 23, "PK": 24, "PL": 28, "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22, "RU": 33, "SA": 24,
    "SC": 31, "SD": 18, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "SO": 23, "ST": 25, "SV": 28, "TL": 23,
    "TN": 24, "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20, "YE": 30,
}


def iban_valid(compact: str) -> bool:
    """`compact`: an IBAN without spaces, upper case. Its country's length and mod 97 == 1."""
    if IBAN_LENGTHS.get(compact[:2]) != len(compact) or not compact[2:4].isdigit() or not compact.isalnum():
        return False
    rearranged = compact[4:] + compact[:4]
    number = "".join(str(int(c, 36)) for c in rearranged)
    return int(number) % 97 == 1


def luhn_valid(digits: str) -> bool:
    total = 0
    for position, char in enumerate(reversed(digits)):
        d = int(char)
        if position % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _card_network_length_ok(digits: str) -> bool:
    """Whether a card network issues numbers with this prefix and this length."""
    n, two, three, four, six = len(digits), int(digits[:2]), int(digits[:3]), int(digits[:4]), int(digits[:6])
    if digits[0] == "4":                                   # Visa
        return n in (13, 16, 19)
    if 51 <= two <= 55 or 222100 <= six <= 272099:        # Mastercard
        return n == 16
    if two in (34, 37):                                    # American Express
        return n == 15
    if 300 <= three <= 305 or two in (36, 38, 39):         # Diners Club
        return 14 <= n <= 19
    if 3528 <= four <= 3589:                               # JCB
        return 16 <= n <= 19
    if four == 6011 or two == 65 or 644 <= three <= 649:  # Discover
        return 16 <= n <= 19
    if two == 62:                                          # UnionPay
        return 16 <= n <= 19
    if two == 50 or 56 <= two <= 69:                       # Maestro
        return 13 <= n <= 19
    return False


def card_valid(digits: str) -> bool:
    return 13 <= len(digits) <= 19 and _card_network_length_ok(digits) and luhn_valid(digits)


def _nir_month_ok(month: int) -> bool:
    # 01-12; 20 and 30-42 (month unknown, INSEE's conventions), 50-99 (registered without a civil record).
    return 1 <= month <= 12 or month == 20 or 30 <= month <= 42 or 50 <= month <= 99


def nir_valid(sex: str, year: str, month: str, department: str, commune: str, order: str, key: str) -> bool:
    """A French social security number (NIR): its parts and its key, 97 - (the 13 digits mod 97).

    Corsica's departments 2A and 2B count as 19 and 18 in the key (2A: minus 1,000,000 of 20...,
    2B: minus 2,000,000)."""
    if not _nir_month_ok(int(month)) or department == "00" or commune == "000" or order == "000":
        return False
    corsica = {"2A": "19", "2B": "18"}
    number = int(sex + year + month + corsica.get(department, department) + commune + order)
    return 97 - number % 97 == int(key)


LA_POSTE_SIREN = "356000000"


def siret_valid(digits: str) -> bool:
    """14 digits: Luhn; La Poste's establishments (SIREN 356000000) instead: digit sum multiple of 5."""
    if len(digits) != 14 or not luhn_valid(digits[:9]):
        return False
    if digits[:9] == LA_POSTE_SIREN:
        return luhn_valid(digits) or sum(map(int, digits)) % 5 == 0
    return luhn_valid(digits)


def international_phone_valid(written: str) -> bool:
    """An E.164 number written with '+': 8 to 15 digits, balanced parentheses."""
    if written.count("(") != written.count(")"):
        return False
    digits = re.sub(r"\D", "", written.replace("(0)", ""))
    return 8 <= len(digits) <= 15


def nanp_valid(area: str, exchange: str) -> bool:
    """A North American number: area code and exchange do not start with 0 or 1."""
    return area[0] not in "01" and exchange[0] not in "01"


def ssn_valid(area: str, group: str, serial: str) -> bool:
    """A US Social Security number: no area 000, 666 or 900-999, no group 00, no serial 0000."""
    return area not in ("000", "666") and area[0] != "9" and group != "00" and serial != "0000"


def nhs_valid(digits: str) -> bool:
    """A UK NHS number: weights 10 down to 2 on the first nine digits, 11 - (sum mod 11) is the
    tenth (11 counts as 0; 10 is never issued)."""
    check = 11 - sum(int(d) * w for d, w in zip(digits[:9], range(10, 1, -1))) % 11
    check = 0 if check == 11 else check
    return len(digits) == 10 and check != 10 and check == int(digits[9])


_NINO_NEVER = {"BG", "GB", "NK", "KN", "TN", "NT", "ZZ"}


def nino_valid(prefix: str) -> bool:
    """A UK National Insurance number's prefix (the letter rules are in the pattern): not one of
    the prefixes never allocated (QQ, HMRC's example, is already refused by the letter rules)."""
    return prefix not in _NINO_NEVER


MONTHS = {name: number for number, names in enumerate((
    ("janvier", "january", "jan"), ("février", "fevrier", "february", "feb"), ("mars", "march", "mar"),
    ("avril", "april", "apr"), ("mai", "may"), ("juin", "june", "jun"), ("juillet", "july", "jul"),
    ("août", "aout", "august", "aug"), ("septembre", "september", "sep", "sept"),
    ("octobre", "october", "oct"), ("novembre", "november", "nov"), ("décembre", "decembre", "december", "dec")),
    start=1) for name in names}


def birth_date_valid(year: int, month: int, day: int, this_year: int) -> bool:
    """A calendar date between 1900 and this year."""
    if not 1900 <= year <= this_year:
        return False
    try:
        datetime.date(year, month, day)
    except ValueError:
        return False
    return True
