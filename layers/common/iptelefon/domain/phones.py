"""Phone numbers: the one place that decides what a phone is.

Canonical form: digits only, country code first, 11-15 digits (`79004443322`, `375291234567`).
The rules of what is a real number come from `phonenumbers` (Google's libphonenumber metadata).
"""

from __future__ import annotations

import re

import phonenumbers

from iptelefon.domain.errors import InvalidPhone

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


def phone_of(value: object, region: str) -> str | None:
    """The canonical phone a value (a client variable) stands for, or None when it is not a phone."""
    try:
        return normalize_phone(value, default_region=region)
    except InvalidPhone:
        return None


def e164(canonical: str) -> str:
    """The phone as answers give it next to the canonical form: `+84912345678` is read back as Vietnam whatever the
    project's region, where `84912345678` would be a Russian `8…` number."""
    return "+" + canonical


# What kind of line a number is, by the numbering plan (phonenumbers' metadata), under names a project setting uses.
NUMBER_TYPES = {
    phonenumbers.PhoneNumberType.FIXED_LINE: "fixed_line",
    phonenumbers.PhoneNumberType.MOBILE: "mobile",
    phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE: "fixed_line_or_mobile",
    phonenumbers.PhoneNumberType.TOLL_FREE: "toll_free",
    phonenumbers.PhoneNumberType.PREMIUM_RATE: "premium_rate",
    phonenumbers.PhoneNumberType.SHARED_COST: "shared_cost",
    phonenumbers.PhoneNumberType.VOIP: "voip",
    phonenumbers.PhoneNumberType.PERSONAL_NUMBER: "personal_number",
    phonenumbers.PhoneNumberType.PAGER: "pager",
    phonenumbers.PhoneNumberType.UAN: "uan",
    phonenumbers.PhoneNumberType.VOICEMAIL: "voicemail",
}


def number_region_and_type(canonical: str) -> tuple[str, str]:
    """The region (ISO code: RU, KZ, BY; `001` for non-geographic numbers) and the kind of line of a canonical phone.

    +7 is shared by Russia and Kazakhstan: the numbering plan, not the country code, tells them apart.
    """
    parsed = phonenumbers.parse("+" + canonical, None)
    region = phonenumbers.region_code_for_number(parsed) or "ZZ"
    return region, NUMBER_TYPES.get(phonenumbers.number_type(parsed), "unknown")


def regions_of_country_code(country_code: int) -> list[str]:
    """The regions that share a country calling code: 7 -> [RU, KZ], 375 -> [BY]."""
    return list(phonenumbers.region_codes_for_country_code(country_code))


def mask_phone(canonical: str) -> str:
    """For logs: keep the country code part and the last two digits (7900*****22)."""
    return canonical[:4] + "*" * max(len(canonical) - 6, 0) + canonical[-2:]


def _invalid(field: str, message: str) -> InvalidPhone:
    return InvalidPhone.for_field(field, message)
