"""The API's request bodies, as Powertools validates them before a route runs.

Three kinds of models are kept apart: stored and domain models (`models`), request bodies (here), answers
(`answers`).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from iptelefon.domain.client_names import MAX_NAME_VARIABLES
from iptelefon.domain.models import (
    ID_PATTERN,
    AuthMode,
    CountryCallingCode,
    EmployeeFields,
    LogicalParam,
    NameVariableEntry,
    NumberType,
    PbxParamName,
)

# How long an old webhook URL may keep working after a rotation (the API's, the console's and the CLI's bound).
MAX_GRACE_HOURS = 72.0


class EmployeeUpdate(EmployeeFields):
    """PUT /v1/employees/{employee_id}: the employee as it should be."""

    model_config = ConfigDict(extra="forbid")


class SettingsUpdate(BaseModel):
    """PUT /v1/settings: the fields to change (left out: unchanged). The secret is write-only; `grace_hours`: how long
    the old webhook URL keeps working when a new secret changes it (default 24, 0 ends every earlier one at once)."""

    model_config = {"extra": "forbid"}

    server_url: str | None = Field(default=None, min_length=1, max_length=500)
    secret: str | None = Field(default=None, min_length=1, max_length=200)
    auth_mode: AuthMode | None = None
    employee_method: str | None = Field(default=None, min_length=1, max_length=64)
    group_method: str | None = Field(default=None, min_length=1, max_length=64)
    param_names: dict[LogicalParam, PbxParamName] | None = None
    messengers: list[Literal["whatsapp", "telegram", "viber", "vk", "instagram"]] | None = None
    allowed_country_codes: list[CountryCallingCode] | None = Field(default=None, max_length=50)
    allowed_number_types: list[NumberType] | None = None
    grace_hours: float | None = Field(default=None, ge=0, le=MAX_GRACE_HOURS)
    name_variables: list[NameVariableEntry] | None = Field(default=None, min_length=1, max_length=MAX_NAME_VARIABLES)
    recording_access: Literal["link", "console"] | None = None
    recording_fallback_method: str | None = Field(default=None, min_length=1, max_length=64)
    recording_fallback_param: PbxParamName | None = None


class WebhookTokenRequest(BaseModel):
    """POST /v1/settings/webhook-token: a new random webhook URL; `grace_hours` as in SettingsUpdate (default 24)."""

    model_config = {"extra": "forbid"}

    grace_hours: float | None = Field(default=None, ge=0, le=MAX_GRACE_HOURS)


class EmployeeCallRequest(BaseModel):
    client_phone: str = Field(min_length=1, max_length=40, examples=["79004443322"])
    # ASCII digits only, the PBX's own format (a regex `\d` would let `٣٤٦` through to the PBX).
    short_employee_phone: str = Field(pattern=r"^[0-9]{2,8}$", examples=["346"])


class GroupCallRequest(BaseModel):
    client_phone: str = Field(min_length=1, max_length=40, examples=["79004443322"])
    group_id: str = Field(pattern=r"^[0-9]{1,16}$", examples=["3"])


class ClientCardCallRequest(BaseModel):
    # Who calls: a bot names the employee; an operator token is the employee (it may leave this out).
    employee_id: str | None = Field(default=None, pattern=ID_PATTERN)
    phone: str | None = Field(default=None, min_length=1, max_length=40)
