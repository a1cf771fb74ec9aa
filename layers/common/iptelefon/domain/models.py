"""Domain models shared by the functions, the admin CLI and the local stack."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, field_validator, model_validator

from iptelefon.domain.client_names import DEFAULT_NAME_VARIABLES, MAX_NAME_VARIABLES, NAME_VARIABLE_ENTRY
from iptelefon.domain.hashes import sha256_hex
from iptelefon.domain.working_hours import DEFAULT_SLA_MINUTES, MAX_SLA_MINUTES, WorkingHours

CallMethod = Literal["disabled", "app", "api"]
NumberType = Literal[
    "fixed_line",
    "mobile",
    "toll_free",
    "premium_rate",
    "shared_cost",
    "voip",
    "personal_number",
    "pager",
    "uan",
    "voicemail",
]
# A country calling code (ITU E.164: 1 to 3 digits), e.g. 375 for Belarus.
CountryCallingCode = Annotated[int, Field(ge=1, le=999)]
PERSONAL_LINES: tuple[NumberType, ...] = ("fixed_line", "mobile")  # what a bot calls unless a project allows more
AuthMode = Literal["hash", "bearer"]
# The parameters a call sends the PBX, by their logical names, and the form field name a PBX may call one instead.
LogicalParam = Literal["ext", "phone", "group"]
PbxParamName = Annotated[str, Field(pattern=r"^[A-Za-z0-9_.\-\[\]]{1,64}$")]
MAX_MISSED_CALL_TEXT = 1000
NameVariableEntry = Annotated[str, Field(pattern=NAME_VARIABLE_ENTRY)]  # `ФИО`, `first_name+last_name`


@dataclass(frozen=True)
class PbxCallNames:
    """The names a PBX gives its call-starting methods and their parameters (logical name → the PBX's name)."""

    employee_method: str
    group_method: str
    param_names: dict[LogicalParam, str]


# The two sets of names known (issue 19). A new project gets `zeon`; a project keeps the names it was stored with.
PbxCallNamesPreset = Literal["zeon", "classic"]
PBX_CALL_NAMES: dict[PbxCallNamesPreset, PbxCallNames] = {
    # The public integration of the same start.php API (a Webasyst CRM plugin for IPtelefon): `call-me` with `src` =
    # the employee's extension and `dst` = the client. The group call is an ASSUMPTION (nothing public starts one):
    # `call-me` with `src` = the group's number, as if the PBX rang a group's number as it rings an extension; a
    # project whose PBX wants otherwise sets `group_method` / `param_names` (PUT /v1/settings).
    "zeon": PbxCallNames("call-me", "call-me", {"ext": "src", "phone": "dst", "group": "src"}),
    # Contract §1's defaults, what projects stored before issue 19 keep (their `param_names` {} = these names).
    "classic": PbxCallNames("call-employee", "call-group", {"ext": "ext", "phone": "phone", "group": "group"}),
}
DEFAULT_PBX_CALL_NAMES = PBX_CALL_NAMES["zeon"]
# Who a token is: a bot (the call and read routes), an operator (one employee: the console's client card), an admin
# (the project's settings and employees).
Role = Literal["bot", "operator", "admin"]
Channel = Literal["telephony", "whatsapp", "telegram", "viber", "vk", "instagram"]
MESSENGERS = ("whatsapp", "telegram", "viber", "vk", "instagram")

# Every id that becomes part of a DynamoDB key (project, employee, client, call key, attempt): ASCII, so at most 128
# bytes, well inside the 1,024-byte sort-key limit; no `#` (the key separator), no `/` (a URL path separator), and a
# letter or digit first (no `.`/`..` path segments). SSM paths accept the same characters.
ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"
_ID = ID_PATTERN
_ID_RE = re.compile(ID_PATTERN)


def is_valid_id(value: str) -> bool:
    return bool(_ID_RE.fullmatch(value))


def call_key_for(pbx_call_id: str) -> str:
    """The `call_key` of the PBX's call id: the id itself when it fits a key, else its sha256 (the PBX's own id stays
    in the record as `pbx_call_id`). A completed call, its live state and a bot's attempt meet under this key."""
    return pbx_call_id if is_valid_id(pbx_call_id) else sha256_hex(pbx_call_id)


def utc_now() -> datetime:
    return datetime.now(UTC)


def utc_stamp(moment: datetime) -> str:
    """UTC ISO time with a fixed width (microseconds always present): sorts as text in time order."""
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def time_ordered_id(now: float | None = None) -> str:
    """Milliseconds since the epoch in hex, then 40 random bits: unique, and in creation order for people reading."""
    seconds = utc_now().timestamp() if now is None else now
    return f"{int(seconds * 1000):x}{secrets.token_hex(5)}"


@dataclass(frozen=True)
class PbxCredentials:
    """How to reach a project's PBX: its start.php URL and API secret (kept in SSM, never in the table or a log)."""

    server_url: str
    secret: str = field(repr=False)


class Project(BaseModel):
    """A tenant. Its PBX `server_url` and `secret` live in SSM, never here."""

    id: str = Field(pattern=_ID)
    name: str = Field(min_length=1, max_length=200)
    messengers: list[Literal["whatsapp", "telegram", "viber", "vk", "instagram"]] = Field(default_factory=list)
    default_region: str = Field(default="RU", pattern=r"^[A-Z]{2}$")
    # Toll-fraud guard: a bot calls numbers of the project's own region and of these country calling codes (every
    # region sharing one: 7 is Russia and Kazakhstan), and only these kinds of line (`phones.NUMBER_TYPES`).
    allowed_country_codes: list[CountryCallingCode] = Field(default_factory=list, max_length=50)
    allowed_number_types: list[NumberType] = Field(default_factory=lambda: list(PERSONAL_LINES))
    # Toll-fraud guard: calls a bot may start per client phone and per project in a window.
    calls_per_phone_per_hour: int = Field(default=5, ge=1)
    calls_per_project_per_minute: int = Field(default=60, ge=1)
    auth_mode: AuthMode = "hash"
    # The call-starting methods' names. Defaults: `PBX_CALL_NAMES["zeon"]`; a project stored with other names (every
    # project made before issue 19: `call-employee`, `call-group`, `param_names` {}) keeps them.
    employee_method: str = Field(default=DEFAULT_PBX_CALL_NAMES.employee_method, min_length=1, max_length=64)
    group_method: str = Field(default=DEFAULT_PBX_CALL_NAMES.group_method, min_length=1, max_length=64)
    # Logical PBX parameter name (ext, phone, group) -> the name this PBX expects; a name left out stays as it is.
    param_names: dict[LogicalParam, PbxParamName] = Field(
        default_factory=lambda: dict(DEFAULT_PBX_CALL_NAMES.param_names)
    )
    # The last segment of the webhook URL is the PBX's API secret (the contract's default), or, when this is set, a
    # random token the service issued (`iptel project create --webhook-token random`), so that the secret that starts
    # calls never travels in URLs. Only the token's sha256 is kept.
    webhook_token_sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")
    # Which variables name a client, first found first (`client_names.display_name`).
    name_variables: list[NameVariableEntry] = Field(
        default_factory=lambda: list(DEFAULT_NAME_VARIABLES), min_length=1, max_length=MAX_NAME_VARIABLES
    )
    # Missed calls (issue 23, `domain.callbacks`): when employees call back, the SLA in working minutes, who gets a
    # task nobody else is named for (an extension), and the text suggested to the client after a missed call (in and
    # out of working hours; empty: none).
    working_hours: WorkingHours = Field(default_factory=WorkingHours)
    callback_sla_minutes: int = Field(default=DEFAULT_SLA_MINUTES, ge=1, le=MAX_SLA_MINUTES)
    callback_default_employee: str | None = Field(default=None, pattern=r"^[0-9]{2,8}$")
    missed_call_text: str = Field(default="", max_length=MAX_MISSED_CALL_TEXT)
    missed_call_text_after_hours: str = Field(default="", max_length=MAX_MISSED_CALL_TEXT)
    # Recordings (issue 25): who may open the stable link /r/{id} (`link`: anyone who has it; `console`: signed-in
    # console users), and the PBX's own method that hands a recording when its link is dead (a `get-file`-style
    # method, None: there is none), with the parameter that names the recording.
    recording_access: Literal["link", "console"] = "link"
    recording_fallback_method: str | None = Field(default=None, min_length=1, max_length=64)
    recording_fallback_param: PbxParamName = "link"
    created_at: datetime = Field(default_factory=utc_now)

    @property
    def has_messenger(self) -> bool:
        return bool(self.messengers)


class EmployeeFields(BaseModel):
    """An employee as the admin sets it: the rules of both the stored employee and the admin API's body."""

    name: str = Field(min_length=1, max_length=200)
    call_method: CallMethod = "disabled"
    # The employee's short (internal) number on the PBX, e.g. "346"; required for the `api` call method.
    short_number: str | None = None

    @field_validator("short_number")
    @classmethod
    def _short_number_digits(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"[0-9]{2,8}", value):  # ASCII: `\d` takes any script's digits
            raise ValueError("short_number must be 2-8 digits, e.g. '346'")
        return value

    @model_validator(mode="after")
    def _api_needs_short_number(self) -> EmployeeFields:
        if self.call_method == "api" and not self.short_number:
            raise ValueError("call_method 'api' needs short_number")
        return self


class Employee(EmployeeFields):
    id: str = Field(pattern=_ID)


class Client(BaseModel):
    id: str = Field(pattern=_ID)
    channel: Channel
    phone: str | None = None
    variables: dict[str, str] = Field(default_factory=dict)
    can_message: bool = True
    created_at: datetime = Field(default_factory=utc_now)


AttemptStatus = Literal["starting", "initiated", "failed", "unknown", "completed"]


class CallAttempt(BaseModel):
    """What a bot or the client card asked the PBX to do, stored before the PBX request (`data.attempts`).

    `starting` → `initiated` (the PBX took it), `failed` (with `reason`) or `unknown` (the PBX's reply could not be
    read: it may have started the call; `reason` says what came) → `completed` once the PBX's completion webhook is
    linked to it (`call_key` of that call, `client_id` it matched).
    """

    model_config = ConfigDict(extra="ignore")

    attempt_id: str
    kind: Literal["employee", "group"]
    source: Literal["bot", "client_card"] = "bot"
    client_phone: str
    short_number: str | None = None  # kind `employee`
    group_id: str | None = None  # kind `group`
    employee_id: str | None = None  # source `client_card`: who called
    card_client_id: str | None = None  # source `client_card`: from whose card
    reference: str | None = None  # the bot's own reference for the call (named in the call's events)
    created_at: str  # `utc_stamp`: fixed width, sorts as time
    status: AttemptStatus = "starting"
    reason: dict[str, str] | None = None  # `failed`, `unknown`: {"error", "message"}
    pbx_call_id: str | None = None  # the PBX's id of the started call, when its reply had one
    pbx_reply: str | None = None  # the PBX's reply, secret masked, cut to 2,000 characters
    # `completed`: the call that completed it. Items stored before the vocabulary was fixed name it `call_id`.
    call_key: str | None = Field(default=None, validation_alias=AliasChoices("call_key", "call_id"))
    client_id: str | None = None
    linked_at: str | None = None


class TokenRecord(BaseModel):
    token_id: str
    project_id: str
    created_at: datetime
    revoked: bool = False
    role: Role = "bot"  # tokens issued before roles existed are bot tokens
    employee_id: str | None = None  # the employee an operator token acts as

    @model_validator(mode="after")
    def _operator_is_an_employee(self) -> TokenRecord:
        if (self.role == "operator") != (self.employee_id is not None):
            raise ValueError("an operator token names its employee, and only an operator token does")
        return self
