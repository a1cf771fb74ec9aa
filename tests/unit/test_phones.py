"""Phone numbers (contract section 4): what people type -> the canonical form, and what is refused with a 400.

Canonical = digits only, country code first, 11-15 digits. Without a `+`, `8XXXXXXXXXX` and 10-digit numbers are
national numbers of the project's default region (Russia unless configured otherwise).
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from iptelefon.domain.errors import InvalidPhone
from iptelefon.domain.phones import mask_phone, normalize_phone, number_region_and_type, regions_of_country_code

PROPERTY_SETTINGS = settings(
    max_examples=300, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)

# Messages the caller reads in `details[0]["message"]` (fragments: the table below pins which one each input gets).
NOT_TYPED_LIKE_A_PHONE = "only digits, a leading +, spaces, dots, dashes and brackets are allowed"
WRONG_DIGIT_COUNT = "must have 10-15 digits"
NOT_VALID = "is not a valid phone number for its country"
NOT_A_PHONE = "is not a phone number"
CANONICAL_TOO_SHORT = "must have 11-15 digits"

# (raw input, canonical result): the forms that reach the service from bots, CRMs, PBX webhooks and people.
ACCEPTED: list[tuple[object, str]] = [
    # Russia, every way it is typed
    ("+7 (900) 444-33-22", "79004443322"),
    ("8 900 444 33 22", "79004443322"),
    ("9004443322", "79004443322"),
    ("79004443322", "79004443322"),
    ("+79004443322", "79004443322"),
    ("8(495)123-45-67", "74951234567"),
    ("4951234567", "74951234567"),
    ("+7-900-444-33-22", "79004443322"),
    ("(900) 444-33-22", "79004443322"),
    ("900-444-33-22", "79004443322"),
    ("7(900)4443322", "79004443322"),
    ("7.900.444.33.22", "79004443322"),
    ("+7.900.444.33.22", "79004443322"),
    ("0079004443322", "79004443322"),
    ("tel:+79004443322", "79004443322"),
    ("TEL:+79004443322", "79004443322"),
    ("tel: +7 900 444 33 22", "79004443322"),
    (" +7 900 444 33 22 ", "79004443322"),
    ("\t+79004443322\n", "79004443322"),
    ("+7\u00a0900\u00a0444\u00a033\u00a022", "79004443322"),  # no-break spaces, pasted from a web page
    ("+7\u2009900\u2009444\u200933\u200922", "79004443322"),  # thin spaces
    ("8-800-555-35-35", "78005553535"),
    ("88005553535", "78005553535"),
    ("8 (812) 123-45-67", "78121234567"),
    ("+7(343)123-45-67", "73431234567"),
    (79004443322, "79004443322"),
    (89004443322, "79004443322"),
    (9004443322, "79004443322"),
    # Kazakhstan shares +7
    ("+7 701 123 4567", "77011234567"),
    ("87011234567", "77011234567"),
    ("+7 7172 123456", "77172123456"),
    ("8 7172 12 34 56", "77172123456"),
    # Belarus
    ("375291234567", "375291234567"),
    ("+375 29 123-45-67", "375291234567"),
    ("00375291234567", "375291234567"),
    ("+375 (29) 123-45-67", "375291234567"),
    # Ukraine
    ("+380 44 123 4567", "380441234567"),
    ("+380 67 123 4567", "380671234567"),
    ("380671234567", "380671234567"),
    # Uzbekistan
    ("+998 90 123 45 67", "998901234567"),
    ("998901234567", "998901234567"),
    # Germany
    ("+49 151 23456789", "4915123456789"),
    ("+49 30 1234567", "49301234567"),
    ("0049 30 1234567", "49301234567"),
    # United Kingdom
    ("+44 20 7946 0958", "442079460958"),
    ("+44 (0) 20 7946 0958", "442079460958"),
    ("0044 20 7946 0958", "442079460958"),
    ("+44 7911 123456", "447911123456"),
    # United States
    ("+1 (212) 555-0123", "12125550123"),
    ("+1 212 555 0123", "12125550123"),
    ("12125550123", "12125550123"),
    ("+1 650 253 0000", "16502530000"),
    # The rest of the neighbourhood and beyond
    ("+995 555 12 34 56", "995555123456"),
    ("+374 77 123456", "37477123456"),
    ("+996 555 123 456", "996555123456"),
    ("+992 93 123 4567", "992931234567"),
    ("+373 69 123 456", "37369123456"),
    ("+370 612 34567", "37061234567"),
    ("+371 2123 4567", "37121234567"),
    ("+372 5123 4567", "37251234567"),
    ("+90 532 123 45 67", "905321234567"),
    ("+971 50 123 4567", "971501234567"),
    ("+33 1 42 68 53 00", "33142685300"),
    ("+39 06 1234 5678", "390612345678"),
    ("+34 612 34 56 78", "34612345678"),
    ("+48 512 345 678", "48512345678"),
    ("+86 138 0013 8000", "8613800138000"),
]

# (raw input, fragment of the message the caller gets)
REJECTED: list[tuple[object, str]] = [
    ("junk", NOT_TYPED_LIKE_A_PHONE),
    ("abc", NOT_TYPED_LIKE_A_PHONE),
    ("79004443322abc", NOT_TYPED_LIKE_A_PHONE),
    ("phone: 79004443322", NOT_TYPED_LIKE_A_PHONE),
    ("", NOT_TYPED_LIKE_A_PHONE),
    ("   ", NOT_TYPED_LIKE_A_PHONE),
    ("tel:", NOT_TYPED_LIKE_A_PHONE),
    ("+", NOT_TYPED_LIKE_A_PHONE),
    (None, NOT_TYPED_LIKE_A_PHONE),
    (True, NOT_TYPED_LIKE_A_PHONE),
    (False, NOT_TYPED_LIKE_A_PHONE),
    (79004443322.0, NOT_TYPED_LIKE_A_PHONE),
    ({"phone": "79004443322"}, NOT_TYPED_LIKE_A_PHONE),
    (["79004443322"], NOT_TYPED_LIKE_A_PHONE),
    (b"79004443322", NOT_TYPED_LIKE_A_PHONE),
    ("++79004443322", NOT_TYPED_LIKE_A_PHONE),
    ("+7 900 444-33-22 ext. 123", NOT_TYPED_LIKE_A_PHONE),
    ("+79004443322 доб. 346", NOT_TYPED_LIKE_A_PHONE),
    ("+7 900 444-33-22#346", NOT_TYPED_LIKE_A_PHONE),
    ("79004443322,346", NOT_TYPED_LIKE_A_PHONE),
    ("+79004443322;+79005556677", NOT_TYPED_LIKE_A_PHONE),
    ("+7 900 444—33—22", NOT_TYPED_LIKE_A_PHONE),  # em dashes
    ("79004443322\x00", NOT_TYPED_LIKE_A_PHONE),
    ("123", WRONG_DIGIT_COUNT),
    ("890044433", WRONG_DIGIT_COUNT),  # 9 digits
    ("0012345678901234567", WRONG_DIGIT_COUNT),
    ("+7 000 000 00 00", NOT_VALID),
    ("8900444332", NOT_VALID),  # 8 followed by 9 digits: a Russian number with a digit missing
    ("7900444332", NOT_VALID),
    ("790044433222", NOT_VALID),  # one digit too many
    ("1111111111", NOT_VALID),
    ("1234567890123456", NOT_VALID),  # 16 digits
    ("+1234567890123456", NOT_VALID),
    ("12345678901234567", NOT_VALID),  # 17 digits
    ("0000000000", NOT_A_PHONE),
    ("+49 30 123456", CANONICAL_TOO_SHORT),  # a real Berlin number, but 10 digits is below the contract's 11
]


def _id(raw: object) -> str:
    return repr(raw)[:40]


@pytest.mark.parametrize(("raw", "expected"), ACCEPTED, ids=[_id(raw) for raw, _ in ACCEPTED])
def test_real_world_input_normalizes_to_the_canonical_phone(raw: object, expected: str) -> None:
    # Given a phone as people, bots and the PBX write it
    # When it is normalized with the default region (Russia)
    result = normalize_phone(raw)

    # Then the result is the canonical form
    assert result == expected


@pytest.mark.parametrize(("raw", "fragment"), REJECTED, ids=[_id(raw) for raw, _ in REJECTED])
def test_rejected_input_raises_invalid_phone_naming_the_field(raw: object, fragment: str) -> None:
    # Given something that is not a phone
    # When it is normalized for the `client_phone` field
    with pytest.raises(InvalidPhone) as caught:
        normalize_phone(raw, field="client_phone")

    # Then it is a 400 that names the field and says what is wrong
    error = caught.value
    assert error.status_code == 400
    assert error.code == "invalid_phone"
    (detail,) = error.details
    assert detail["field"] == "client_phone"
    assert fragment in detail["message"]
    assert error.message == f"client_phone: {detail['message']}"


def test_field_defaults_to_phone() -> None:
    # Given no field name
    # When junk is normalized
    with pytest.raises(InvalidPhone) as caught:
        normalize_phone("junk")

    # Then the error names `phone`
    assert caught.value.details[0]["field"] == "phone"
    assert caught.value.message.startswith("phone: ")


@pytest.mark.parametrize(
    "raw",
    [
        "７９００４４４３３２２",  # full-width digits (a Japanese/Chinese keyboard, some CRMs)
        "+７ ９００ ４４４ ３３ ２２",
        "٧٩٠٠٤٤٤٣٣٢٢",  # Arabic-Indic digits
        "𝟕𝟗𝟎𝟎𝟒𝟒𝟒𝟑𝟑𝟐𝟐",  # mathematical bold digits
    ],
    ids=["full-width", "full-width-with-plus", "arabic-indic", "math-bold"],
)
def test_unicode_digits_are_read_as_their_ascii_digits(raw: str) -> None:
    # Given a phone written with non-ASCII decimal digits (the code accepts them: `\d` and libphonenumber both do)
    # When it is normalized
    result = normalize_phone(raw)

    # Then the canonical phone is plain ASCII
    assert result == "79004443322"
    assert result.isascii()


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("8 029 123-45-67", "375291234567"),
        ("80291234567", "375291234567"),
        ("0291234567", "375291234567"),
        ("+79004443322", "79004443322"),
        ("79004443322", "79004443322"),
    ],
)
def test_belarus_default_region_reads_national_numbers_as_belarusian(raw: str, expected: str) -> None:
    # Given a project whose default region is Belarus
    # When a national (or an international) number is normalized
    result = normalize_phone(raw, default_region="BY")

    # Then national numbers become Belarusian and international ones keep their country
    assert result == expected


def test_belarus_default_region_does_not_read_a_russian_8_number_as_russian() -> None:
    # Given a project whose default region is Belarus
    # When a Russian number in the Russian national form is normalized
    with pytest.raises(InvalidPhone) as caught:
        normalize_phone("8 900 444 33 22", default_region="BY", field="client_phone")

    # Then it is not silently turned into a Russian number
    assert caught.value.details[0]["field"] == "client_phone"


@pytest.mark.parametrize(
    ("canonical", "region", "kind"),
    [
        ("79004443322", "RU", "mobile"),
        ("74951234567", "RU", "fixed_line"),
        ("78095051234", "RU", "premium_rate"),  # +7 809: Russian premium rate
        ("78001234567", "RU", "toll_free"),
        ("77011234567", "KZ", "mobile"),  # +7 701: Kazakhstan, though it shares +7
        ("375291234567", "BY", "mobile"),
        ("88216123456", "001", "voip"),  # a non-geographic number (Thuraya)
    ],
)
def test_region_and_kind_of_line_come_from_the_numbering_plan(canonical: str, region: str, kind: str) -> None:
    assert number_region_and_type(canonical) == (region, kind)


def test_regions_of_a_country_code_are_all_that_share_it() -> None:
    assert regions_of_country_code(7) == ["RU", "KZ"]
    assert regions_of_country_code(375) == ["BY"]


@pytest.mark.parametrize(
    ("canonical", "masked"),
    [("79004443322", "7900*****22"), ("375291234567", "3752******67"), ("4915123456789", "4915*******89")],
)
def test_mask_phone_hides_the_middle(canonical: str, masked: str) -> None:
    # Given a canonical phone
    # When it is masked for a log line
    result = mask_phone(canonical)

    # Then the start and the last two digits stay, everything between is a star
    assert result == masked
    assert len(result) == len(canonical)
    assert canonical not in result


# --- properties ------------------------------------------------------------------------------------------------------

PHONE_CHARS = st.sampled_from(list("0123456789+ ()-.\t\u00a0٣７"))
ANY_INPUT = st.one_of(
    st.text(),
    st.text(alphabet=PHONE_CHARS, max_size=25),
    st.from_regex(r"(tel:)?(\+|00)?[0-9 ().\-]{8,22}", fullmatch=True),
    st.integers(),
)


@PROPERTY_SETTINGS
@given(raw=ANY_INPUT, region=st.sampled_from(["RU", "BY", "KZ", "US"]))
def test_any_input_gives_a_canonical_phone_or_invalid_phone(raw: object, region: str) -> None:
    # Given any text (or int) and a default region
    # When it is normalized
    try:
        result = normalize_phone(raw, default_region=region)
    except InvalidPhone as error:
        # Then either it is refused as a phone, naming the field ...
        assert error.details[0]["field"] == "phone"
        return

    # ... or the result is 11-15 ASCII digits (nothing else ever escapes)
    assert isinstance(result, str)
    assert result.isascii()
    assert result.isdigit()
    assert 11 <= len(result) <= 15


@PROPERTY_SETTINGS
@given(subscriber=st.text(alphabet="0123456789", min_size=9, max_size=9))
def test_normalizing_a_canonical_russian_mobile_again_returns_it(subscriber: str) -> None:
    # Given a Russian mobile 79XXXXXXXXX that the code accepts
    try:
        canonical = normalize_phone("79" + subscriber)
    except InvalidPhone:
        return

    # When the canonical result is normalized again
    again = normalize_phone(canonical)

    # Then it is unchanged (normalization is idempotent)
    assert canonical == "79" + subscriber
    assert again == canonical


@pytest.mark.parametrize("raw", ["-79004443322", -79004443322, ")79004443322"])
def test_a_leading_minus_or_closing_bracket_is_not_a_phone(raw: object) -> None:
    with pytest.raises(InvalidPhone):
        normalize_phone(raw)


def test_default_region_is_case_insensitive() -> None:
    assert normalize_phone("8 900 444 33 22", default_region="ru") == "79004443322"
