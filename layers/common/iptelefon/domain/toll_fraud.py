"""The toll-fraud guard: which phones a project may call (its own region and allowed country codes; fixed lines and
mobiles by default, never premium rate, shared cost, personal, UAN, VoIP, … unless the project allows them)."""

from __future__ import annotations

from iptelefon.domain.errors import CountryNotAllowed, NumberNotAllowed
from iptelefon.domain.models import Project
from iptelefon.domain.phones import normalize_phone, number_region_and_type, regions_of_country_code


def callable_phone(project: Project, raw: str, *, field: str) -> str:
    """The canonical phone, if the project may call it, else InvalidPhone / CountryNotAllowed / NumberNotAllowed.

    The guard reads the numbering plan: the number's region (Kazakhstan is not Russia, though both are +7) must be
    the project's own or one of its allowed country codes' regions, and its kind of line one the project allows.
    """
    phone = normalize_phone(raw, default_region=project.default_region, field=field)
    region, kind = number_region_and_type(phone)
    extra = [r for code in project.allowed_country_codes for r in regions_of_country_code(code)]
    regions = list(dict.fromkeys([project.default_region, *extra]))
    if region not in regions:
        message = f"calls to numbers of {region} are not allowed in this project (allowed: {', '.join(regions)})"
        raise CountryNotAllowed(f"{field}: {message}", details=[{"field": field, "message": message}])
    allowed = set(project.allowed_number_types)
    if kind not in allowed and not (kind == "fixed_line_or_mobile" and allowed & {"fixed_line", "mobile"}):
        listed = ", ".join(t.replace("_", " ") for t in project.allowed_number_types)
        message = f"{kind.replace('_', ' ')} numbers are not called in this project (allowed: {listed})"
        raise NumberNotAllowed(f"{field}: {message}", details=[{"field": field, "message": message}])
    return phone
