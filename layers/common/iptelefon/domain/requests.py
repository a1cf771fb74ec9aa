"""The API's request bodies, as Powertools validates them before a route runs.

Three kinds of models are kept apart: stored and domain models (`models`), request bodies (here), answers
(`answers`).
"""

from __future__ import annotations

from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from iptelefon.domain.call_events import DEFAULT_SECRET_GRACE_HOURS, MAX_SECRET_GRACE_HOURS, EventType
from iptelefon.domain.callbacks import MAX_REASON_CHARS
from iptelefon.domain.client_names import MAX_NAME_VARIABLES
from iptelefon.domain.models import (
    ID_PATTERN,
    MAX_MISSED_CALL_TEXT,
    AuthMode,
    CountryCallingCode,
    EmployeeFields,
    LogicalParam,
    NameVariableEntry,
    NumberType,
    PbxParamName,
)
from iptelefon.domain.working_hours import MAX_SLA_MINUTES, WorkingHours

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
    working_hours: WorkingHours | None = None
    callback_sla_minutes: int | None = Field(default=None, ge=1, le=MAX_SLA_MINUTES)
    callback_default_employee: str | None = Field(default=None, pattern=r"^([0-9]{2,8})?$")
    missed_call_text: str | None = Field(default=None, max_length=MAX_MISSED_CALL_TEXT)
    missed_call_text_after_hours: str | None = Field(default=None, max_length=MAX_MISSED_CALL_TEXT)
    recording_access: Literal["link", "console"] | None = None
    recording_fallback_method: str | None = Field(default=None, min_length=1, max_length=64)
    recording_fallback_param: PbxParamName | None = None


class CallbackCloseRequest(BaseModel):
    """POST /v1/callbacks/{task_id}/close: why the task is closed without a callback (e.g. the client wrote)."""

    model_config = {"extra": "forbid"}

    reason: str = Field(min_length=1, max_length=MAX_REASON_CHARS, examples=["клиент написал в чат"])


class WebhookTokenRequest(BaseModel):
    """POST /v1/settings/webhook-token: a new random webhook URL; `grace_hours` as in SettingsUpdate (default 24)."""

    model_config = {"extra": "forbid"}

    grace_hours: float | None = Field(default=None, ge=0, le=MAX_GRACE_HOURS)


# A bot's own reference for a call it starts (its deal, its task): kept on the attempt, named in the call's events.
Reference = Field(default=None, min_length=1, max_length=200, pattern=r"^[^\x00-\x1f\x7f]+$", examples=["deal-1842"])


class EmployeeCallRequest(BaseModel):
    client_phone: str = Field(min_length=1, max_length=40, examples=["79004443322"])
    # ASCII digits only, the PBX's own format (a regex `\d` would let `٣٤٦` through to the PBX).
    short_employee_phone: str = Field(pattern=r"^[0-9]{2,8}$", examples=["346"])
    reference: str | None = Reference


class GroupCallRequest(BaseModel):
    client_phone: str = Field(min_length=1, max_length=40, examples=["79004443322"])
    group_id: str = Field(pattern=r"^[0-9]{1,16}$", examples=["3"])
    reference: str | None = Reference


class EndpointCreate(BaseModel):
    """POST /v1/endpoints: where a project's call events go (https), what for, which events (default: all)."""

    model_config = ConfigDict(extra="forbid")

    url: str = Field(min_length=8, max_length=1000, examples=["https://crm.example.com/hooks/iptelefon"])
    description: str = Field(default="", max_length=500)
    event_types: list[EventType] | None = Field(default=None, min_length=1)
    enabled: bool = True


class SecretRotation(BaseModel):
    """POST /v1/endpoints/{endpoint_id}/rotate-secret: how long the old secret keeps signing beside the new one."""

    model_config = ConfigDict(extra="forbid")

    grace_hours: float = Field(default=DEFAULT_SECRET_GRACE_HOURS, ge=0, le=MAX_SECRET_GRACE_HOURS)


class ReplaySince(BaseModel):
    """POST /v1/endpoints/{endpoint_id}/replay: every delivery to it that failed since `since` (ISO time)."""

    model_config = ConfigDict(extra="forbid")

    since: AwareDatetime


class ClientCardCallRequest(BaseModel):
    # Who calls: a bot names the employee; an operator token is the employee (it may leave this out).
    employee_id: str | None = Field(default=None, pattern=ID_PATTERN)
    phone: str | None = Field(default=None, min_length=1, max_length=40)
