"""Rule-based PII: every kind on valid and invalid numbers, no hits in ordinary business text,
redaction, and the `pii` moderation provider. Pure logic: no server, no model.

The valid numbers are published examples (IBAN registry examples, the card networks' test
numbers, real companies' SIREN/SIRET); the invalid ones differ from them by one digit, or are
checksum-valid numbers a validator must still refuse (wrong length for the country or network).
"""

import asyncio

import pytest

from plateforme.moderation.pii import PII_KINDS, REDACTION_LABELS, PiiMatch, find_pii, redact
from plateforme.moderation.pii_checks import luhn_valid
from plateforme.moderation.pii_provider import PiiProvider
from plateforme.moderation.provider import ModerationInput
from plateforme.tenancy.principal import DEV_PRINCIPAL


def found(text: str) -> list[tuple[str, str]]:
    return [(m.kind, m.text) for m in find_pii(text)]


def only(kind: str, number: str, around: str = "ref: {} merci") -> bool:
    """Whether `number`, inside a sentence, is reported as exactly one match of `kind`."""
    return found(around.format(number)) == [(kind, number)]


def nothing(number: str, around: str = "ref: {} merci") -> bool:
    return found(around.format(number)) == []


VALID_IBANS = [
    "FR76 3000 6000 0112 3456 7890 189", "FR7630006000011234567890189", "DE89 3704 0044 0532 0130 00",
    "GB29 NWBK 6016 1331 9268 19", "BE68 5390 0754 7034", "NL91 ABNA 0417 1643 00",
    "ES91 2100 0418 4502 0005 1332", "IT60 X054 2811 1010 0000 0123 456", "CH93 0076 2011 6238 5295 7",
    "NO93 8601 1117 947", "MT84 MALT 0110 0001 2345 MTLC AST0 01S", "fr76 3000 6000 0112 3456 7890 189",
]
BAD_IBANS = [
    "FR76 3000 6000 0112 3456 7890 188",   # one digit changed: mod 97 fails
    "FR77 3000 6000 0112 3456 7890 189",   # wrong check digits
    "DE89 3704 0044 0532 0130 01", "GB29 NWBK 6016 1331 9268 18", "BE69 5390 0754 7034",
    "FR76 3000 6000 0112 3456 7890 18",    # one character short of France's 27
    "XX89 3704 0044 0532 0130 00",         # no such country
]


@pytest.mark.parametrize("iban", VALID_IBANS)
def test_valid_ibans_of_several_countries_are_found(iban):
    assert only("iban", iban) and only("iban", iban, "IBAN {}")


@pytest.mark.parametrize("iban", BAD_IBANS)
def test_ibans_failing_their_checksum_or_length_are_not_reported_as_anything(iban):
    assert nothing(iban)


def test_an_iban_ends_at_its_countrys_length_before_the_next_word():
    assert found("BE68 5390 0754 7034 dans le dossier") == [("iban", "BE68 5390 0754 7034")]
    assert found("virement sur DE89 3704 0044 0532 0130 00.") == [("iban", "DE89 3704 0044 0532 0130 00")]


VALID_CARDS = [
    "4111 1111 1111 1111", "4111111111111111", "4012888888881881", "5555 5555 5555 4444",
    "5105-1051-0510-5100", "2223 0031 2200 3222", "3782 822463 10005", "371449635398431",
    "6011 1111 1111 1117", "3530 1113 3330 0000", "3056 9309 0259 04", "6200 0000 0000 0005",
]
BAD_CARDS = [
    "4111 1111 1111 1112", "5555 5555 5555 4445", "3782 822463 10006",  # Luhn fails
    "1234 5678 9012 3452",    # Luhn-valid, but no network starts with 1
    "3782 8224 6310 0052",    # Luhn-valid, but an Amex number has 15 digits, not 16
    "4111 1111 1111 111",     # 15 digits: no Visa length
    "4111-1111 1111-1111",    # mixed separators: not how a card is written
]


@pytest.mark.parametrize("card", VALID_CARDS)
def test_luhn_valid_card_numbers_of_every_network_are_found(card):
    assert only("card", card, "ma carte {} expire bientôt")


@pytest.mark.parametrize("card", BAD_CARDS)
def test_card_numbers_failing_luhn_prefix_or_length_are_not_reported(card):
    assert luhn_valid("1234567890123452") and luhn_valid("3782822463100052")
    assert nothing(card, "ma carte {} expire bientôt")


def nir_key(thirteen: str) -> str:
    return f"{97 - int(thirteen) % 97:02d}"


def test_nir_with_its_key_is_found_written_grouped_or_not():
    assert nir_key("2550814168025") == "38"
    assert only("nir", "2 55 08 14 168 025 38", "Mon numéro de sécu : {}.")
    assert only("nir", "255081416802538")
    assert only("nir", "1 85 05 78 006 084 91")


def test_nir_with_a_wrong_key_or_impossible_parts_is_not_reported():
    assert nothing("2 55 08 14 168 025 39")
    assert nothing("255081416802537")
    assert nothing("5 55 08 14 168 025 " + nir_key("5550814168025")), "sex digit 5 does not exist"
    assert nothing("2 55 13 14 168 025 " + nir_key("2551314168025")), "month 13"
    assert nothing("2 55 08 00 168 025 " + nir_key("2550800168025")), "department 00"


def test_nir_born_in_corsica_counts_2a_as_19_and_2b_as_18():
    key_2a, key_2b = nir_key("2690519004023"), nir_key("1780718004023")
    assert only("nir", f"2 69 05 2A 004 023 {key_2a}") and only("nir", f"269052A004023{key_2a}")
    assert only("nir", f"1 78 07 2B 004 023 {key_2b}")
    # Keys computed naively (2A read as 20, 2B as 20) are wrong keys.
    assert nothing(f"2 69 05 2A 004 023 {nir_key('2690520004023')}")
    assert nothing(f"1 78 07 2B 004 023 {nir_key('1780720004023')}")


def test_siret_grouped_stands_alone_and_siren_or_bare_siret_need_their_name():
    assert only("siret", "552 120 222 00013", "Société Générale, {}, Paris")
    assert only("siret", "44306184100047", "SIRET : {}")
    assert only("siren", "552 120 222", "RCS Paris B {}")
    assert only("siren", "443061841", "SIREN de la société : {}")
    # Without its name, a 9-digit or 14-digit number is an order number, a timestamp...
    assert nothing("443061841", "commande {}") and nothing("44306184100047", "horodatage {}")


def test_siret_and_siren_failing_luhn_are_not_reported():
    assert nothing("552 120 222 00014", "Société Générale, {}, Paris")
    assert nothing("44306184100048", "SIRET : {}")
    assert nothing("443061842", "SIREN : {}")
    assert nothing("552 120 223 00013")  # its SIREN part fails


def test_la_poste_sirets_follow_the_digit_sum_rule():
    head_office, office = "356 000 000 00048", "35600000049837"     # Luhn; digit sum 45, not Luhn
    assert not luhn_valid(office) and sum(map(int, office)) % 5 == 0
    assert only("siret", head_office, "La Poste, {}") and only("siret", office, "SIRET {}")
    assert nothing("35600000049838", "SIRET {}")                     # digit sum 46, not Luhn
    other = "73282932000" + next(f"{n:03d}" for n in range(1000)    # the rule is La Poste's only
                                 if sum(map(int, f"73282932000{n:03d}")) % 5 == 0
                                 and not luhn_valid(f"73282932000{n:03d}"))
    assert nothing(other, "SIRET {}")


@pytest.mark.parametrize("phone", [
    "06 12 34 56 78", "0612345678", "01.23.45.67.89", "09-87-65-43-21", "+33 6 12 34 56 78",
    "+33612345678", "+33 (0)1 23 45 67 89", "0033 1 23 45 67 89", "+44 20 7946 0958", "+49 30 901820",
    "+1 (415) 555-2671", "+81 3-1234-5678", "(415) 555-2671", "415-555-2671",
])
def test_phone_numbers_french_and_international_are_found(phone):
    assert only("phone", phone, "Appelez-moi au {} demain")


@pytest.mark.parametrize("phone", [
    "06 12 34 56 7",      # nine digits
    "00 12 34 56 78",     # no French number starts 00 then 0
    "06 12 34 56 78 90",  # twelve digits
    "+33 6 12 34",        # too short for E.164
    "+1 234 567 890 123 456 7",  # too long for E.164
    "(415) 055-2671",     # a North American exchange does not start with 0
    "06 12-34 56.78",     # mixed separators
])
def test_phone_shaped_numbers_that_are_no_phone_numbers_are_not_reported(phone):
    assert nothing(phone, "Appelez-moi au {} demain")


@pytest.mark.parametrize("email", [
    "jeanne.dupont@exemple.fr", "élodie+devis@sous.domaine.co.uk", "a_b-c@mail-server.io", "X@Y.ORG",
])
def test_emails_are_found(email):
    assert only("email", email, "Écrivez à {}.")


@pytest.mark.parametrize("email", [
    "a..b@example.com", "name@localhost", "@example.com", "name@exa_mple.com", "name@example.c",
    "name@-example.com",
])
def test_malformed_emails_are_not_reported(email):
    assert nothing(email, "Écrivez à {} svp")


@pytest.mark.parametrize("kind, number, around", [
    ("ssn", "531-72-4409", "my SSN {} please"), ("ssn", "523 41 8876", "SSN: {}."),
    ("nhs", "943 476 5919", "NHS number {}, diabetes"), ("nhs", "4010232137", "NHS {} :"),
    ("nino", "AB 12 34 56 C", "National Insurance {} ok"), ("nino", "JG103759A", "NINO {}."),
    ("passport", "19AB12345", "mon passeport {}, il expire"), ("passport", "538214976", "passport number is {} and"),
    ("birth_date", "14/06/1962", "Maria, né(e) le {}, diabète"), ("birth_date", "3 March 1985", "born {} in Phoenix"),
    ("birth_date", "04/07/1988", "DOB {}:"), ("birth_date", "1988-07-04", "date of birth: {}"),
    ("birth_date", "June 14, 1962", "born on {}."), ("birth_date", "3 mars 1985", "né le {} à Lille"),
    ("birth_date", "12/31/1985", "DOB {}"),  # month first, as in the US
    ("plate", "GH-482-KT", "la voiture immatriculée {}, rayée"), ("plate", "KX19 ABC", "the car with plate {} he"),
    ("phone", "07700 900123", "call me on {} tonight"), ("phone", "0117 496 0321", "tel {},"),
    ("phone", "020 7946 0958", "ring {}."), ("phone", "087 123 4567", "phone {}. Share"),
])
def test_identity_numbers_dates_of_birth_and_plates_are_found(kind, number, around):
    assert only(kind, number, around)


@pytest.mark.parametrize("number, around", [
    ("000-12-3456", "SSN {}"), ("666-12-3456", "SSN {}"), ("912-34-5678", "SSN {}"), ("123-00-4567", "SSN {}"),
    ("123-45-0000", "SSN {}"),                                     # areas, groups, serials never issued
    ("943 476 5918", "NHS number {}"), ("485 777 3456", "NHS {}"),   # mod 11 fails
    ("943 476 5919", "ticket {} closed"),                           # an NHS number only with its name
    ("QQ 12 34 56 C", "National Insurance {}"), ("GB 12 34 56 A", "NI {}"), ("AB 12 34 56 E", "NI {}"),
    ("19AB12345", "référence {} du colis"),                          # a passport number only with its name
    ("31/02/1962", "né le {}"), ("02/31/1962", "born {}"),            # no such day
    ("12/04/2990", "born {}"), ("12/04/1850", "DOB {}"),              # not a living person's
    ("14/06/1962", "facture du {}"),                                 # a date is a date of birth only when said
    ("AB-000-CD", "immatriculée {}"), ("IO-123-AB", "immatriculée {}"),  # block 000, letters I and O unused
    ("GH-482-KT", "référence produit {}"),
    ("07700 90012", "call me on {} tonight"),                        # ten digits: no UK mobile
])
def test_identity_shaped_strings_that_fail_their_rules_are_not_reported(number, around):
    assert nothing(number, around)


BUSINESS_TEXT = """
Bonjour, suite à votre commande n° 4521-887 du 01/12/2026 à 10:30, la facture FAC-2026-00042
d'un montant de 1 234,56 € TTC (TVA 20 %, soit 205,76 €) est disponible. Livraison prévue le
12.05.2026 entre 8h et 12h au 14 rue de la Paix, 75002 Paris. Réf. article 123456789, lot 2026-11-30,
quantité 1 250 unités, remise de 15 % sur 12 345 678 € de chiffre d'affaires annuel.
Hello team, order #100045678 shipped on 2026-12-01T09:15:00Z; invoice INV-2026-0042 totals
$12,345.67 (3 x $4,115.22). Q3 revenue grew 12.5% to EUR 1.2bn; call us between 9:00 and 17:30.
Tracking 1Z999AA10123456784, version v2.3.1, build 20261201185200, ISBN 978-2-07-036822-8,
server 192.168.10.25:8080, meeting room 4B, 2 x 16 GB RAM, tel. extension 4567, SKU 8841-2277-10.
Le contrat 2026/118 prend effet au 1er janvier 2027 pour 36 mois ; pénalités de 0,5 % par jour.
Our birthday sale starts on 12/05/2026; born in 1998, the brand registration AB-123-CD was filed under
reference 12AB34567 with the passport office (see PO-2026-118); product code AB12 CDE, part 123-45-678.
"""


def test_ordinary_business_text_with_dates_amounts_and_order_numbers_has_no_pii():
    assert found(BUSINESS_TEXT) == []


def test_redact_replaces_each_kind_with_its_label_and_keeps_the_rest():
    text = ("Jeanne (jeanne.dupont@exemple.fr, 06 12 34 56 78) paie avec 4111 1111 1111 1111 ou "
            "FR76 3000 6000 0112 3456 7890 189 ; NIR 2 55 08 14 168 025 38, SIRET 552 120 222 00013, "
            "SIREN 443061841. Commande 4521-887 du 01/12/2026. Née le 14/06/1962, passeport 19AB12345, "
            "SSN 531-72-4409.")
    assert redact(text) == ("Jeanne ([EMAIL], [PHONE]) paie avec [CARD] ou [IBAN] ; NIR [NIR], "
                            "SIRET [SIRET], SIREN [SIREN]. Commande 4521-887 du 01/12/2026. Née le [BIRTH_DATE], "
                            "passeport [PASSPORT], SSN [SSN].")
    assert set(REDACTION_LABELS) == set(PII_KINDS)
    for m in find_pii(text):
        assert text[m.start:m.end] == m.text
    assert redact(BUSINESS_TEXT) == BUSINESS_TEXT


def test_numbers_grouped_with_no_break_or_thin_spaces_are_found_as_written():
    text = ("Tél.\u00a0: 06\u00a012\u00a034\u00a056\u00a078, "
            "IBAN FR76\u202f3000\u202f6000\u202f0112\u202f3456\u202f7890\u202f189")
    assert found(text) == [("phone", "06\u00a012\u00a034\u00a056\u00a078"),
                           ("iban", "FR76\u202f3000\u202f6000\u202f0112\u202f3456\u202f7890\u202f189")]
    assert redact(text) == "Tél.\u00a0: [PHONE], IBAN [IBAN]"
    assert found("Montant\u00a0: 1\u00a0234\u00a0567,89\u00a0€") == []


def test_redact_with_given_matches_replaces_those_only():
    text = "a@b.fr et c@d.fr"
    first = find_pii(text)[0]
    assert redact(text, [first]) == "[EMAIL] et c@d.fr"
    overlapping = [PiiMatch("email", 0, 6, "a@b.fr"), PiiMatch("phone", 3, 8, "b.fr ")]
    assert redact(text, overlapping) == "[EMAIL] et c@d.fr"


def test_the_pii_provider_scores_1_on_a_validated_match_and_0_otherwise():
    provider = PiiProvider()
    assert provider.name == "pii" and provider.categories == frozenset({"pii"})
    items = [ModerationInput("IBAN FR76 3000 6000 0112 3456 7890 189"),
             ModerationInput("IBAN FR76 3000 6000 0112 3456 7890 188"),
             ModerationInput("Quel temps fait-il ?", context=({"role": "user", "content": "a@b.fr"},)),
             ModerationInput(BUSINESS_TEXT * 40 + " jeanne@exemple.fr"),  # long: scored in a thread
             ModerationInput("Pour le support, écrivez à contact@exemple.fr ou support@exemple.com."),
             ModerationInput("Écrivez à contact@exemple.fr ou à jeanne@exemple.fr.")]
    result = asyncio.run(provider.score(DEV_PRINCIPAL, items))
    assert result.scores == [{"pii": 1.0}, {"pii": 0.0}, {"pii": 0.0}, {"pii": 1.0}, {"pii": 0.0}, {"pii": 1.0}]
    assert result.prompt_tokens == 0
    assert provider.redact("écrire à a@b.fr ou contact@b.fr") == "écrire à [EMAIL] ou [EMAIL]"
