"""What a project's admin changes: the PBX connection, the employees and their call methods, operator tokens.

The admin API (the console's "Телефония" and "Сотрудники" screens) calls these with the admin token's project; the
rules they keep (a URL the PBX can be reached at, a secret that can stand in a URL path, the webhook lookup rotated
with the secret) are the same the admin CLI keeps.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from botocore.exceptions import BotoCoreError, ClientError

from iptelefon.adapters.pbx import PbxClient, PbxConnection, method_names
from iptelefon.data.gateway import Storage, get_storage, sha256_hex
from iptelefon.data.pbx_settings import (
    PbxCredentials,
    project_ssm_path,
    put_pbx_credentials,
    ssm_provider,
)
from iptelefon.domain.errors import InvalidInput, NotFound, StorageUnavailable
from iptelefon.domain.models import ID_PATTERN, Employee, EmployeeUpdate, Project, SettingsUpdate, is_valid_id
from iptelefon.platform.settings import get_settings
from iptelefon.usecases.auth import Caller, issue_token

DEFAULT_GRACE_HOURS = 24.0  # how long an old webhook URL keeps working after the secret in it changed


@dataclass(frozen=True)
class Backend:
    """Where a project's settings live: the table (through the storage gateway) and SSM."""

    storage: Storage
    ssm: Any
    ssm_prefix: str

    @classmethod
    def of_this_function(cls) -> Backend:
        return cls(get_storage(), ssm_provider().client, get_settings().ssm_prefix)


# -- rules ------------------------------------------------------------------------------------------------------------
def check_server_url(server_url: str) -> None:
    parts = urlsplit(server_url)
    local = parts.hostname in ("127.0.0.1", "localhost")
    if parts.scheme not in ("https", "http") or not parts.hostname or (parts.scheme == "http" and not local):
        raise InvalidInput.for_field(
            "server_url", "must be the full https URL of start.php, e.g. https://a00.abc.ru/b3/api/v2/start.php"
        )


def check_secret(secret: str) -> None:
    # The secret is also the last segment of the webhook URL: `/`, `?`, `#`, `%` or a space would break that URL.
    if not re.fullmatch(r"[A-Za-z0-9._~-]{8,200}", secret):
        raise InvalidInput.for_field(
            "secret",
            "must be 8-200 characters that can stand in a URL path as they are: letters, digits, '.', '_', '~', '-' "
            "(ask the Iptelefon manager for such a key)",
        )


# -- the PBX connection -----------------------------------------------------------------------------------------------
def stored_pbx_value(backend: Backend, project_id: str, name: str, *, decrypt: bool = False) -> str:
    """`server_url` or `secret` of the project, read from SSM now (not from a warm Lambda's cache)."""
    path = project_ssm_path(backend.ssm_prefix, project_id)
    try:
        reply = backend.ssm.get_parameter(Name=f"{path}/{name}", WithDecryption=decrypt)
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") == "ParameterNotFound":
            raise NotFound(f"project {project_id} has no PBX connection in SSM under {path}/") from None
        raise StorageUnavailable("the project's PBX settings are unavailable, retry later") from error
    except BotoCoreError as error:
        raise StorageUnavailable("the project's PBX settings are unavailable, retry later") from error
    return str(reply["Parameter"]["Value"])


def change_pbx_connection(
    backend: Backend,
    project: Project,
    *,
    server_url: str | None = None,
    secret: str | None = None,
    grace_hours: float = DEFAULT_GRACE_HOURS,
) -> dict[str, Any]:
    """A new server URL and/or PBX secret. When the secret is also the webhook path secret, its webhook lookup is
    rotated: the new URL works at once, the old one until `old_webhook_url_valid_until`. Returns that time and whether
    the URL changed (nothing when the secret is not in the URL). Repeatable: a rotation that stopped half-way can be
    run again."""
    if server_url is not None:
        check_server_url(server_url)
    if secret is not None:
        check_secret(secret)
    url = server_url or stored_pbx_value(backend, project.id, "server_url")
    old_secret = stored_pbx_value(backend, project.id, "secret", decrypt=True)
    changed: dict[str, Any] = {}
    if secret is not None and project.webhook_token_sha256 is None:  # the secret is in the webhook URL
        valid_until = int(time.time() + grace_hours * 3600)
        backend.storage.rotate_webhook_secret(
            project.id, sha256_hex(old_secret), sha256_hex(secret), old_valid_until=valid_until
        )
        changed = {
            "webhook_url_changed": secret != old_secret,
            "old_webhook_url_valid_until": datetime.fromtimestamp(valid_until, UTC).isoformat(),
        }
    put_pbx_credentials(backend.ssm, backend.ssm_prefix, project.id, PbxCredentials(url, secret or old_secret))
    return changed


def update_settings(backend: Backend, project: Project, update: SettingsUpdate) -> tuple[Project, dict[str, Any]]:
    """The project's settings with `update` applied (fields left out stay as they are): (project, what changed in
    the webhook URL, see `change_pbx_connection`)."""
    changed: dict[str, Any] = {}
    if update.server_url is not None or update.secret is not None:
        changed = change_pbx_connection(backend, project, server_url=update.server_url, secret=update.secret)
    fields = update.model_dump(exclude_unset=True, exclude_none=True, exclude={"server_url", "secret"})
    updated = Project.model_validate({**project.model_dump(), **fields})
    if fields:
        backend.storage.update_project(updated)
    return updated, changed


# -- employees and operator tokens ------------------------------------------------------------------------------------
def put_employee(backend: Backend, project: Project, employee_id: str, update: EmployeeUpdate) -> Employee:
    if not is_valid_id(employee_id):
        raise InvalidInput.for_field("employee_id", f"must match {ID_PATTERN}")
    employee = Employee(id=employee_id, **update.model_dump())
    backend.storage.put_employee(project.id, employee)
    return employee


def employee_or_404(backend: Backend, project: Project, employee_id: str) -> Employee:
    employee = backend.storage.get_employee(project.id, employee_id) if is_valid_id(employee_id) else None
    if employee is None:
        raise NotFound(f"employee {employee_id} not found")
    return employee


def delete_employee(backend: Backend, project: Project, employee_id: str) -> None:
    """The employee is gone, and so are their operator tokens (revoked: they answer 401 from now on)."""
    employee_or_404(backend, project, employee_id)
    for token in operator_tokens(backend, project, employee_id):
        backend.storage.revoke_token(project.id, str(token["token_id"]))
    backend.storage.delete_employee(project.id, employee_id)


def issue_operator_token(backend: Backend, project: Project, employee_id: str) -> dict[str, str]:
    """A token that acts as this employee in the console: shown once, stored only as a hash."""
    employee_or_404(backend, project, employee_id)
    token_id, token = issue_token(backend.storage, project.id, role="operator", employee_id=employee_id)
    return {"token_id": token_id, "token": token, "employee_id": employee_id, "role": "operator"}


def revoke_token(backend: Backend, project: Project, token_id: str) -> None:
    if not is_valid_id(token_id) or not backend.storage.revoke_token(project.id, token_id):
        raise NotFound(f"token {token_id} not found")


def employees_view(backend: Backend, project: Project) -> dict[str, Any]:
    """The employees with their call methods and the ids of their operator tokens (never the tokens)."""
    tokens = backend.storage.list_tokens(project.id)
    return {
        "employees": [
            {
                **employee.model_dump(mode="json"),
                "operator_tokens": [t for t in _token_ids(tokens, "operator") if t["employee_id"] == employee.id],
            }
            for employee in backend.storage.list_employees(project.id)
        ]
    }


def operator_tokens(backend: Backend, project: Project, employee_id: str) -> list[dict[str, Any]]:
    tokens = _token_ids(backend.storage.list_tokens(project.id), "operator")
    return [t for t in tokens if t["employee_id"] == employee_id]


def _token_ids(refs: list[dict[str, Any]], role: str) -> list[dict[str, Any]]:
    """The live tokens of a role, as the token listing names them (id, employee, created_at)."""
    return [
        {
            "token_id": ref["sk"].removeprefix("TOKENREF#"),
            "employee_id": ref.get("employee_id"),
            "created_at": ref.get("created_at"),
        }
        for ref in refs
        if ref.get("role", "bot") == role and not ref.get("revoked")
    ]


# -- what the console shows -------------------------------------------------------------------------------------------
def settings_view(backend: Backend, project: Project, api_base: str) -> dict[str, Any]:
    """The Iptelefon connection and the project's call settings. The secret is write-only: only whether it is set."""
    webhook_form = "pbx-secret" if project.webhook_token_sha256 is None else "random"
    placeholder = "{secret}" if webhook_form == "pbx-secret" else "{token}"
    return {
        "project_id": project.id,
        "name": project.name,
        "server_url": stored_pbx_value(backend, project.id, "server_url"),
        "secret_set": bool(stored_pbx_value(backend, project.id, "secret", decrypt=True)),
        "auth_mode": project.auth_mode,
        "employee_method": project.employee_method,
        "group_method": project.group_method,
        "param_names": project.param_names,
        "messengers": project.messengers,
        "default_region": project.default_region,
        "allowed_country_codes": project.allowed_country_codes,
        "allowed_number_types": project.allowed_number_types,
        "webhook_path": webhook_form,
        # The URL to give to the Iptelefon manager, the secret (or the random token, shown when it was issued) left
        # for the reader to fill in: it is never sent back.
        "webhook_url_template": f"{api_base}/iptelefon_webhook/{placeholder}",
    }


def check_connection(project: Project, pbx: PbxClient, connection: PbxConnection) -> dict[str, Any]:
    """`ping` the PBX with the stored connection, then read its method list (PbxError / PbxTimeout otherwise)."""
    started = time.monotonic()
    pbx.ping(connection)
    methods = method_names(pbx.method_list(connection))
    return {
        "reachable": True,
        "ms": round((time.monotonic() - started) * 1000),
        "methods": methods,
        "call_methods_found": {
            "employee_method": project.employee_method in methods,
            "group_method": project.group_method in methods,
        },
    }


def who_is(backend: Backend, caller: Caller) -> dict[str, Any]:
    """GET /v1/me: the token's role and project, and an operator's employee with their call method."""
    employee = backend.storage.get_employee(caller.project.id, caller.employee_id) if caller.employee_id else None
    return {
        "role": caller.role,
        "token_id": caller.token_id,
        "project": {"id": caller.project.id, "name": caller.project.name},
        "employee": employee.model_dump(mode="json") if employee else None,
    }
