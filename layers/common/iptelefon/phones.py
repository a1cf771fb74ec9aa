"""Phone numbers: the one place that decides what a phone is.

Canonical form: digits only, country code first, 11-15 digits (`79004443322`, `375291234567`).
The rules of what is a real number come from `phonenumbers` (Google's libphonenumber metadata).
"""

from __future__ import annotations

import re

import phonenumbers

from iptelefon.errors import InvalidPhone

# What people really type: +, digits, spaces, dashes, dots, brackets; optionally a `tel:` prefix.
_TYPED_PHONE = re.compile(r"^\+?[\d(][\d\s().\-]*$")
_NON_DIGITS = re.compile(r"\D")


def normalize_phone(raw: object, *, default_region: str = "RU", field: str = "phone") -> str:
    """Return the canonical phone or raise InvalidPhone naming `field`.

    Without a leading `+`: 10 digits and `8XXXXXXXXXX` are national numbers of `default_region` (Russia by default);
    `00…` is the international prefix; anything else is read as country code first.
    """
    home_region = default_region.upper()
    text = str(raw).strip() if isinstance(raw, (str, int)) and not isinstance(raw, bool) else ""
    if text.lower().startswith("tel:"):
        text = text[4:].strip()
    if not text or not _TYPED_PHONE.fullmatch(text):
        raise _invalid(
            field, "is not a phone number: only digits, a leading +, spaces, dots, dashes and brackets are allowed"
        )
    digits = _NON_DIGITS.sub("", text)
    if not 10 <= len(digits) <= 17:
        raise _invalid(field, "must have 10-15 digits with the country code, e.g. 79004443322")
    if text.startswith("+"):
        candidate, region = "+" + digits, None
    elif digits.startswith("00"):
        candidate, region = "+" + digits[2:], None
    elif len(digits) == 10 or (len(digits) == 11 and digits.startswith("8")):
        candidate, region = digits, home_region
    else:
        candidate, region = "+" + digits, None
    try:
        parsed = phonenumbers.parse(candidate, region)
    except phonenumbers.NumberParseException:
        raise _invalid(field, "is not a phone number") from None
    if not phonenumbers.is_valid_number(parsed):
        raise _invalid(field, "is not a valid phone number for its country")
    canonical = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)[1:]
    if not 11 <= len(canonical) <= 15:
        raise _invalid(field, "must have 11-15 digits with the country code")
    return canonical


def phone_country_code(canonical: str) -> int:
    """Country calling code of a canonical phone (7 for 79004443322, 375 for 375291234567)."""
    return int(phonenumbers.parse("+" + canonical, None).country_code or 0)


def region_country_code(region: str) -> int:
    """Country calling code of a region: RU -> 7, BY -> 375."""
    return phonenumbers.country_code_for_region(region)


def mask_phone(canonical: str) -> str:
    """For logs: keep the country code part and the last two digits (7900*****22)."""
    return canonical[:4] + "*" * max(len(canonical) - 6, 0) + canonical[-2:]


def _invalid(field: str, message: str) -> InvalidPhone:
    return InvalidPhone.for_field(field, message)
