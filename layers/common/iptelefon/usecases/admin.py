"""What a project's admin changes: the PBX connection, the employees and their call methods, operator tokens.

The admin API (the console's "Телефония" and "Сотрудники" screens) calls these with the admin token's project; the
rules they keep (a URL the PBX can be reached at, a secret that can stand in a URL path, the webhook lookup rotated
with the secret) are the same the admin CLI keeps.

What a tenant admin may not do (issue 20): send the stored secret to a new host (a new origin needs the secret in the
same request), point the PBX inward (`domain.pbx_address`), learn that another project uses a secret, or widen the
toll-fraud guard (that is the deployment operator's: `iptel project guard`). A settings change is checked whole
before anything is written: all of it or nothing.
"""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from iptelefon.domain import pbx_address
from iptelefon.domain.errors import (
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
    PbxError,
    PbxTimeout,
    StorageUnavailable,
)
from iptelefon.domain.hashes import sha256_hex
from iptelefon.domain.models import ID_PATTERN, PERSONAL_LINES, Employee, PbxCredentials, Project, is_valid_id
from iptelefon.domain.pbx_address import PbxNetwork
from iptelefon.domain.requests import MAX_GRACE_HOURS, EmployeeUpdate, SettingsUpdate
from iptelefon.usecases.auth import Caller, issue_token
from iptelefon.usecases.ports import Clock, Employees, PbxCheck, PbxSettings, ProjectSettings, Tokens

DEFAULT_GRACE_HOURS = 24.0  # how long an old webhook URL keeps working after the secret in it changed


@dataclass(frozen=True)
class AdminDeps:
    """What a project's admin changes: the project (and its webhook lookup), employees, tokens, the PBX connection in
    SSM. The admin API builds them for its Lambda (`entry.dependencies`), the CLI for its target."""

    projects: ProjectSettings
    employees: Employees
    tokens: Tokens
    pbx_settings: PbxSettings
    clock: Clock = time.time
    pbx_network: PbxNetwork = "public"  # where this stage's PBX requests may go (settings)


# -- rules ------------------------------------------------------------------------------------------------------------
# A secret that is also the webhook URL's last segment must be too long to guess (the PBX issues 17-character keys):
# the webhook answers 404 to a wrong one, and a refused collision tells that a secret is in use.
MIN_URL_SECRET_CHARS = 17
MIN_SECRET_CHARS = 8
SECRET_REFUSED = "this secret cannot be used: choose another one (ask the Iptelefon manager for a new key)"  # noqa: S105


def check_server_url(server_url: str, network: PbxNetwork) -> None:
    pbx_address.check_server_url(server_url, network)


def check_secret(secret: str, *, in_webhook_url: bool) -> None:
    # The secret may also be the last segment of the webhook URL: `/`, `?`, `#`, `%` or a space would break that URL.
    shortest = MIN_URL_SECRET_CHARS if in_webhook_url else MIN_SECRET_CHARS
    if not (shortest <= len(secret) <= 200 and re.fullmatch(r"[A-Za-z0-9._~-]+", secret)):
        why = " (it is also the webhook URL's last segment: a shorter one could be guessed)" if in_webhook_url else ""
        raise InvalidInput.for_field(
            "secret",
            f"must be {shortest}-200 characters{why} that can stand in a URL path as they are: letters, digits, '.', "
            "'_', '~', '-' (ask the Iptelefon manager for such a key)",
        )


def check_grace_hours(grace_hours: float) -> None:
    if not 0 <= grace_hours <= MAX_GRACE_HOURS:
        raise InvalidInput.for_field("grace_hours", f"must be 0 to {MAX_GRACE_HOURS:g} hours")


def check_guard_not_widened(current: Project, updated: Project) -> None:
    """A tenant admin may narrow the toll-fraud guard, or bring it back to the project's region and personal lines;
    anything wider (another country, premium rate, ...) is the deployment operator's (`iptel project guard`)."""
    codes = sorted(set(updated.allowed_country_codes) - set(current.allowed_country_codes))
    kinds = sorted(set(updated.allowed_number_types) - {*current.allowed_number_types, *PERSONAL_LINES})
    if codes or kinds:
        wider = ", ".join([*(f"+{code}" for code in codes), *(k.replace("_", " ") for k in kinds)])
        raise Forbidden(
            f"calls to {wider} numbers are allowed by the deployment's operator only "
            f"(iptel project guard {current.id} --allow-country ... --allow-number-type ...)"
        )


# -- the PBX connection -----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _ConnectionChange:
    stored: PbxCredentials
    credentials: PbxCredentials  # what will be stored
    rotates: bool  # the secret is the webhook URL's: its lookup rotates


def _checked_connection_change(
    deps: AdminDeps, project: Project, server_url: str | None, secret: str | None, grace_hours: float
) -> _ConnectionChange:
    """Every rule of a new server URL and/or secret, checked before anything is written."""
    in_url = project.webhook_token_sha256 is None
    if server_url is not None:
        check_server_url(server_url, deps.pbx_network)
    if secret is not None:
        check_secret(secret, in_webhook_url=in_url)
    check_grace_hours(grace_hours)
    stored = deps.pbx_settings.read(project.id)
    if (
        server_url is not None
        and secret is None
        and pbx_address.origin(server_url) != pbx_address.origin(stored.server_url)
    ):
        # The stored secret is never sent to a host it was not given for.
        raise InvalidInput.for_field(
            "secret", "a server_url on another host (scheme, host or port) needs the PBX secret in the same request"
        )
    rotates = secret is not None and in_url
    if rotates and secret is not None:
        taken = deps.projects.find_webhook_secret(sha256_hex(secret))
        if taken is not None and taken.get("project_id") != project.id:
            raise Conflict(SECRET_REFUSED)  # said without naming whose: the storage's condition says the same
    return _ConnectionChange(stored, PbxCredentials(server_url or stored.server_url, secret or stored.secret), rotates)


def _apply_connection_change(
    deps: AdminDeps, project: Project, change: _ConnectionChange, grace_hours: float
) -> dict[str, Any]:
    changed: dict[str, Any] = {}
    if change.rotates:
        valid_until = int(deps.clock() + grace_hours * 3600)
        deps.projects.rotate_webhook_secret(
            project.id,
            sha256_hex(change.stored.secret),
            sha256_hex(change.credentials.secret),
            old_valid_until=valid_until,
            cut_earlier=grace_hours == 0,
        )
        changed = {
            "webhook_url_changed": change.credentials.secret != change.stored.secret,
            "old_webhook_url_valid_until": datetime.fromtimestamp(valid_until, UTC).isoformat(),
        }
    deps.pbx_settings.write(project.id, change.credentials)
    return changed


def change_pbx_connection(
    deps: AdminDeps,
    project: Project,
    *,
    server_url: str | None = None,
    secret: str | None = None,
    grace_hours: float = DEFAULT_GRACE_HOURS,
) -> tuple[PbxCredentials, dict[str, Any]]:
    """A new server URL and/or PBX secret. When the secret is also the webhook path secret, its webhook lookup is
    rotated: the new URL works at once, the old one until `old_webhook_url_valid_until` (`grace_hours` 0: every
    earlier one stops at once). Returns the connection now stored, and that time and whether the URL changed (nothing
    when the secret is not in the URL). Repeatable: a rotation that stopped half-way can be run again."""
    change = _checked_connection_change(deps, project, server_url, secret, grace_hours)
    return change.credentials, _apply_connection_change(deps, project, change, grace_hours)


def new_webhook_token() -> str:
    """A random last segment for the webhook URL: 32 random bytes, URL-safe as they are."""
    return secrets.token_urlsafe(32)


def rotate_webhook_token(deps: AdminDeps, project: Project, *, grace_hours: float) -> tuple[str, int]:
    """A new random webhook token (the PBX secret leaves the URL, if it was there): (the token, shown once; until when
    the old webhook URL still works). `grace_hours` 0: every earlier URL of the project stops at once."""
    check_grace_hours(grace_hours)
    old_hash = project.webhook_token_sha256 or sha256_hex(deps.pbx_settings.read(project.id).secret)
    token = new_webhook_token()
    valid_until = int(deps.clock() + grace_hours * 3600)
    deps.projects.rotate_webhook_secret(
        project.id,
        old_hash,
        sha256_hex(token),
        old_valid_until=valid_until,
        new_is_token=True,
        cut_earlier=grace_hours == 0,
    )
    return token, valid_until


def issue_webhook_url(deps: AdminDeps, project: Project, api_base: str, *, grace_hours: float | None) -> dict[str, Any]:
    """POST /v1/settings/webhook-token: a new random webhook URL, shown this once (only its hash is stored); the old
    URL works until `old_webhook_url_valid_until`."""
    token, valid_until = rotate_webhook_token(
        deps, project, grace_hours=DEFAULT_GRACE_HOURS if grace_hours is None else grace_hours
    )
    return {
        "webhook_url": webhook_url(api_base, token),
        "old_webhook_url_valid_until": datetime.fromtimestamp(valid_until, UTC).isoformat(),
    }


def webhook_url(api_base: str, last_segment: str) -> str:
    return f"{api_base}/iptelefon_webhook/{last_segment}"


def update_settings(deps: AdminDeps, project: Project, update: SettingsUpdate, api_base: str) -> dict[str, Any]:
    """The project's settings with `update` applied (fields left out stay as they are), answered as `settings_view`
    does, with `old_webhook_url_valid_until` when the webhook URL changed (the old URL works until then). Every rule is
    checked before the first write: a refused change changes nothing."""
    fields = update.model_dump(exclude_unset=True, exclude_none=True, exclude={"server_url", "secret", "grace_hours"})
    if fields.get("callback_default_employee") == "":  # "" takes the default employee away
        fields["callback_default_employee"] = None
    try:
        updated = Project.model_validate({**project.model_dump(), **fields})
    except ValidationError as error:
        first = error.errors()[0]
        raise InvalidInput.for_field(".".join(str(p) for p in first["loc"]), str(first["msg"])) from None
    check_guard_not_widened(project, updated)
    grace = DEFAULT_GRACE_HOURS if update.grace_hours is None else update.grace_hours
    change = None
    if update.server_url is not None or update.secret is not None:
        change = _checked_connection_change(deps, project, update.server_url, update.secret, grace)
    changed = _apply_connection_change(deps, project, change, grace) if change else {}
    if fields:
        deps.projects.update_project(updated)
    view = _settings(updated, change.credentials if change else deps.pbx_settings.read(project.id), api_base)
    if changed.get("webhook_url_changed"):
        view["old_webhook_url_valid_until"] = changed["old_webhook_url_valid_until"]
    return view


# -- employees and operator tokens ------------------------------------------------------------------------------------
def put_employee(deps: AdminDeps, project: Project, employee_id: str, update: EmployeeUpdate) -> Employee:
    if not is_valid_id(employee_id):
        raise InvalidInput.for_field("employee_id", f"must match {ID_PATTERN}")
    employee = Employee(id=employee_id, **update.model_dump())
    deps.employees.put_employee(project.id, employee)
    return employee


def employee_or_404(deps: AdminDeps, project: Project, employee_id: str) -> Employee:
    employee = deps.employees.get_employee(project.id, employee_id) if is_valid_id(employee_id) else None
    if employee is None:
        raise NotFound(f"employee {employee_id} not found")
    return employee


def delete_employee(deps: AdminDeps, project: Project, employee_id: str) -> None:
    """The employee is gone, and so are their operator tokens (revoked: they answer 401 from now on)."""
    employee_or_404(deps, project, employee_id)
    for token in operator_tokens(deps, project, employee_id):
        deps.tokens.revoke_token(project.id, str(token["token_id"]))
    deps.employees.delete_employee(project.id, employee_id)


def issue_operator_token(deps: AdminDeps, project: Project, employee_id: str) -> dict[str, str]:
    """A token that acts as this employee in the console: shown once, stored only as a hash."""
    employee_or_404(deps, project, employee_id)
    token_id, token = issue_token(deps.tokens, project.id, role="operator", employee_id=employee_id)
    return {"token_id": token_id, "token": token, "employee_id": employee_id, "role": "operator"}


def list_tokens(deps: AdminDeps, project: Project) -> list[dict[str, Any]]:
    """The project's live tokens (id, role, employee, created_at), oldest first: never a token nor its hash."""
    return [
        {
            "token_id": ref["sk"].removeprefix("TOKENREF#"),
            "role": ref.get("role", "bot"),  # tokens made before roles were bots
            "employee_id": ref.get("employee_id"),
            "created_at": ref.get("created_at"),
        }
        for ref in deps.tokens.list_tokens(project.id)
        if not ref.get("revoked")
    ]


def revoke_token(deps: AdminDeps, project: Project, token_id: str) -> None:
    if not is_valid_id(token_id) or not deps.tokens.revoke_token(project.id, token_id):
        raise NotFound(f"token {token_id} not found")


def employees_view(deps: AdminDeps, project: Project) -> dict[str, Any]:
    """The employees with their call methods and the ids of their operator tokens (never the tokens)."""
    tokens = _operator_tokens(deps, project)
    return {
        "employees": [
            {
                **employee.model_dump(mode="json"),
                "operator_tokens": [t for t in tokens if t["employee_id"] == employee.id],
            }
            for employee in deps.employees.list_employees(project.id)
        ]
    }


def operator_tokens(deps: AdminDeps, project: Project, employee_id: str) -> list[dict[str, Any]]:
    return [t for t in _operator_tokens(deps, project) if t["employee_id"] == employee_id]


def _operator_tokens(deps: AdminDeps, project: Project) -> list[dict[str, Any]]:
    # as the employee listing has always named them: id, employee, created_at
    return [
        {key: token[key] for key in ("token_id", "employee_id", "created_at")}
        for token in list_tokens(deps, project)
        if token["role"] == "operator"
    ]


# -- what the console shows -------------------------------------------------------------------------------------------
def settings_view(deps: AdminDeps, project: Project, api_base: str) -> dict[str, Any]:
    """The Iptelefon connection and the project's call settings (SSM read once). The secret is write-only: only
    whether it is set."""
    return _settings(project, deps.pbx_settings.read(project.id), api_base)


def _settings(project: Project, credentials: PbxCredentials, api_base: str) -> dict[str, Any]:
    webhook_form = "pbx-secret" if project.webhook_token_sha256 is None else "random"
    placeholder = "{secret}" if webhook_form == "pbx-secret" else "{token}"
    return {
        "project_id": project.id,
        "name": project.name,
        "server_url": credentials.server_url,
        "secret_set": bool(credentials.secret),
        "auth_mode": project.auth_mode,
        "employee_method": project.employee_method,
        "group_method": project.group_method,
        "param_names": project.param_names,
        "messengers": project.messengers,
        "default_region": project.default_region,
        "allowed_country_codes": project.allowed_country_codes,
        "allowed_number_types": project.allowed_number_types,
        "name_variables": project.name_variables,
        "working_hours": project.working_hours.model_dump(),
        "callback_sla_minutes": project.callback_sla_minutes,
        "callback_default_employee": project.callback_default_employee,
        "missed_call_text": project.missed_call_text,
        "missed_call_text_after_hours": project.missed_call_text_after_hours,
        "recording_access": project.recording_access,
        "recording_fallback_method": project.recording_fallback_method,
        "recording_fallback_param": project.recording_fallback_param,
        "webhook_path": webhook_form,
        # The URL to give to the Iptelefon manager, the secret (or the random token, shown when it was issued) left
        # for the reader to fill in: it is never sent back.
        "webhook_url_template": webhook_url(api_base, placeholder),
    }


def check_connection(project: Project, pbx: PbxCheck) -> dict[str, Any]:
    """`ping` the PBX with the stored connection (PbxError / PbxTimeout unless it answers "pong"), then what it tells
    of itself: its methods (`get-method-list`) and extensions (`get-points`). A PBX that answers neither still passes
    the check: what it did not tell is null, and `unavailable` says why."""
    started = time.monotonic()
    pbx.ping()
    unavailable: dict[str, str] = {}
    methods = _told(pbx.method_names, "methods", unavailable)
    points = _told(pbx.points, "points", unavailable)
    found = None
    if methods is not None:
        found = {"employee_method": project.employee_method in methods, "group_method": project.group_method in methods}
    return {
        "reachable": True,
        "ms": round((time.monotonic() - started) * 1000),
        "methods": methods,
        "call_methods_found": found,
        "points": points,
        "unavailable": unavailable,
    }


def pbx_points(pbx: PbxCheck) -> dict[str, Any]:
    """GET /v1/pbx/points: the PBX's extensions (`get-points`), for the employee form's short number."""
    return {"points": pbx.points()}


def _told(ask: Callable[[], list[str]], what: str, unavailable: dict[str, str]) -> list[str] | None:
    # Neither list is documented, nor every PBX's to give: the ping already proved the connection.
    try:
        return ask()
    except (PbxError, PbxTimeout, StorageUnavailable) as error:  # StorageUnavailable: no time left to ask
        unavailable[what] = error.message
        return None


def who_is(deps: AdminDeps, caller: Caller) -> dict[str, Any]:
    """GET /v1/me: the token's role and project, and an operator's employee with their call method."""
    employee = deps.employees.get_employee(caller.project.id, caller.employee_id) if caller.employee_id else None
    return {
        "role": caller.role,
        "token_id": caller.token_id,
        "project": {"id": caller.project.id, "name": caller.project.name},
        "employee": employee.model_dump(mode="json") if employee else None,
    }
