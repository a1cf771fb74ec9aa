"""Admin operations shared by the `iptel` CLI and the local stack's seeding (no printing here)."""

from __future__ import annotations

import json
import socket
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import boto3

from iptel_admin import client_import
from iptel_admin.client_import import ImportReport, build_client
from iptelefon.adapters.pbx import PbxClient, get_pbx_client
from iptelefon.data.call_records import CallRecordStore
from iptelefon.data.clients import ClientStore
from iptelefon.data.gateway import Storage, dynamodb_client
from iptelefon.data.projects import ProjectStore
from iptelefon.domain.answers import CallAnswer
from iptelefon.domain.errors import DomainError, InvalidInput, NotFound
from iptelefon.domain.hashes import sha256_hex
from iptelefon.domain.models import (
    PBX_CALL_NAMES,
    PERSONAL_LINES,
    AuthMode,
    CallMethod,
    Client,
    Employee,
    PbxCallNamesPreset,
    PbxCredentials,
    Project,
    Role,
)
from iptelefon.domain.pbx_address import PbxNetwork
from iptelefon.domain.pbx_connection import PbxConnection
from iptelefon.domain.requests import EndpointCreate, ReplaySince, SecretRotation
from iptelefon.entry.dependencies import admin_deps_over, event_deps_over
from iptelefon.usecases import admin as project_admin
from iptelefon.usecases import call_events
from iptelefon.usecases.auth import issue_token
from iptelefon.usecases.call_events import EventDeps
from iptelefon.usecases.calls import connection_for

DEFAULT_STACK_FILE = Path(".local/stack.json")
PBX_TIMEOUT_SECONDS = 10.0


@dataclass
class Target:
    """Where the admin commands write: the local stack (moto server) or a deployed stage."""

    storage: Storage
    ssm: Any
    ssm_prefix: str
    api_url: str | None = None
    # Where this target's PBX requests may go: a deployed stage's are public; the local stack's simulator is local.
    pbx_network: PbxNetwork = "public"
    # The call events' delivery queue (replays) and an SQS client for it.
    event_queue_url: str | None = None
    sqs: Any = None

    @cached_property
    def deps(self) -> project_admin.AdminDeps:
        """The admin use cases' dependencies over this target's clients: the same the admin API builds."""
        return admin_deps_over(self.storage, self.ssm, self.ssm_prefix, self.pbx_network)

    @cached_property
    def events(self) -> EventDeps:
        """The call events' use cases' dependencies over this target's clients (the admin API's own)."""
        return event_deps_over(
            self.storage,
            self.ssm,
            self.ssm_prefix,
            self.pbx_network,
            queue_url=self.event_queue_url,
            sqs_client=self.sqs,
        )

    @property
    def pbx(self) -> PbxClient:
        return get_pbx_client(self.pbx_network)


class StackNotRunning(DomainError):
    status_code = 503
    code = "stack_not_running"


def local_target(stack_file: Path = DEFAULT_STACK_FILE) -> Target:
    """The local stack `make run` described in `stack_file`; StackNotRunning when there is none listening."""
    not_running = "the local stack is not running (start it with `make run`, or pass --stage for a deployed stage)"
    if not stack_file.exists():
        raise StackNotRunning(f"{not_running}; {stack_file} not found")
    try:
        stack = json.loads(stack_file.read_text())
        endpoint_url = stack["aws_endpoint_url"]
        target = connect(endpoint_url, stack["region"], stack["table_name"], stack["ssm_prefix"], stack["api_url"])
        target.pbx_network = "local"  # the stack's PBX simulator listens on this machine
        target.event_queue_url = stack.get("event_queue_url")
    except (ValueError, KeyError, TypeError) as error:
        raise InvalidInput(f"{stack_file} is not a stack file written by `make run` ({error!r})") from None
    if endpoint_url and not _listening(endpoint_url):
        # A stack stopped without removing its file (killed with SIGKILL): its ports are dead.
        raise StackNotRunning(f"{not_running}; nothing listens at {endpoint_url} named in {stack_file}")
    return target


def _listening(url: str) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 80), timeout=1):
            return True
    except OSError:
        return False


def connect(endpoint_url: str | None, region: str, table_name: str, ssm_prefix: str, api_url: str | None) -> Target:
    # The local stack's moto server takes any credentials; a newcomer has none configured.
    key = "local" if endpoint_url else None
    session = boto3.Session(region_name=region, aws_access_key_id=key, aws_secret_access_key=key)
    kwargs: dict[str, Any] = {"endpoint_url": endpoint_url} if endpoint_url else {}
    dynamodb = session.client("dynamodb", **kwargs) if endpoint_url else dynamodb_client()
    return Target(
        storage=Storage(dynamodb, table_name),
        ssm=session.client("ssm", **kwargs),
        ssm_prefix=ssm_prefix,
        api_url=api_url,
        sqs=session.client("sqs", **kwargs),
    )


def aws_target(*, stage: str, profile: str | None, region: str | None, stack_name: str | None) -> Target:
    """A deployed stage: table name and SSM path come from the CloudFormation stack's outputs."""
    session = boto3.Session(profile_name=profile, region_name=region)
    name = stack_name or f"iptelefon-connector-{stage}"
    stacks = session.client("cloudformation").describe_stacks(StackName=name)["Stacks"]
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stacks[0].get("Outputs", [])}
    return Target(
        storage=Storage(session.client("dynamodb"), outputs["MainTableName"]),
        ssm=session.client("ssm"),
        ssm_prefix=outputs["SsmPath"].removesuffix("/projects/"),
        api_url=outputs["ApiUrl"],
        event_queue_url=outputs.get("EventQueueUrl"),
        sqs=session.client("sqs"),
    )


# What ends the webhook URL: the PBX's API secret (the contract's default) or a random token (Project model).
WebhookPath = Literal["pbx-secret", "random"]


@dataclass
class CreatedProject:
    project: Project
    webhook_url: str | None
    token_id: str
    token: str  # shown once, never stored in clear


def create_project(
    target: Target,
    *,
    name: str,
    server_url: str,
    secret: str,
    messengers: list[str],
    project_id: str | None = None,
    default_region: str = "RU",
    auth_mode: AuthMode = "hash",
    allowed_country_codes: list[int] | None = None,
    extra_number_types: list[str] | None = None,
    webhook_path: WebhookPath = "pbx-secret",
    pbx_call_names: PbxCallNamesPreset = "zeon",
) -> CreatedProject:
    """A new project. `pbx_call_names`: the names its PBX gives the call-starting methods (`PBX_CALL_NAMES`)."""
    random_path = webhook_path == "random"
    project_admin.check_server_url(server_url, target.pbx_network)
    project_admin.check_secret(secret, in_webhook_url=not random_path)
    path_secret = project_admin.new_webhook_token() if random_path else secret
    names = PBX_CALL_NAMES[pbx_call_names]
    project = Project.model_validate(
        {
            "id": project_id or uuid.uuid4().hex[:12],
            "employee_method": names.employee_method,
            "group_method": names.group_method,
            "param_names": dict(names.param_names),
            "name": name,
            "messengers": messengers,
            "default_region": default_region,
            "auth_mode": auth_mode,
            "allowed_country_codes": allowed_country_codes or [],
            "allowed_number_types": list(dict.fromkeys([*PERSONAL_LINES, *(extra_number_types or [])])),
            "webhook_token_sha256": sha256_hex(path_secret) if random_path else None,
        }
    )
    deps = target.deps
    if deps.projects.get_project(project.id) is not None:
        raise InvalidInput.for_field("id", f"project {project.id} already exists")
    deps.pbx_settings.write(project.id, PbxCredentials(server_url=server_url, secret=secret))
    deps.projects.create_project(project, webhook_secret=path_secret)
    token_id, token = issue_token(deps.tokens, project.id)
    return CreatedProject(project, webhook_url(target, path_secret), token_id, token)


def rotate_secret(target: Target, project_id: str, new_secret: str, *, grace_hours: float = 24) -> dict[str, Any]:
    """The project's new PBX secret: into SSM and, when it is also the webhook path secret, the webhook lookup. The
    old webhook URL keeps working for `grace_hours` (the PBX may still use it until its manager switches), then
    answers 404. A project with a random webhook token keeps its webhook URL."""
    project = _project(target, project_id)
    _, changed = project_admin.change_pbx_connection(target.deps, project, secret=new_secret, grace_hours=grace_hours)
    if not changed:
        return {"project_id": project_id, "note": "the webhook URL (a random token) is unchanged"}
    return {
        "project_id": project_id,
        "webhook_url": webhook_url(target, new_secret),
        "old_webhook_url_valid_until": changed["old_webhook_url_valid_until"],
        "note": ROTATED_NOTE,
    }


def rotate_webhook_token(target: Target, project_id: str, *, grace_hours: float = 24) -> dict[str, Any]:
    """A new random webhook token for the project (which uses its PBX secret in the URL until then). The old webhook
    URL keeps working for `grace_hours`, then answers 404; the PBX secret is not changed."""
    token, valid_until = project_admin.rotate_webhook_token(
        target.deps, _project(target, project_id), grace_hours=grace_hours
    )
    return _rotated(target, project_id, token, valid_until)


def _rotated(target: Target, project_id: str, path_secret: str, valid_until: int) -> dict[str, Any]:
    return {
        "project_id": project_id,
        "webhook_url": webhook_url(target, path_secret),
        "old_webhook_url_valid_until": datetime.fromtimestamp(valid_until, UTC).isoformat(),
        "note": ROTATED_NOTE,
    }


ROTATED_NOTE = "configure the new webhook_url in the PBX; the old one answers 404 after old_webhook_url_valid_until"


def webhook_url(target: Target, secret: str) -> str | None:
    return f"{target.api_url.rstrip('/')}/iptelefon_webhook/{secret}" if target.api_url else None


def set_guard(target: Target, project_id: str, *, countries: list[int], number_types: list[str]) -> dict[str, Any]:
    """The toll-fraud guard's widening, the deployment operator's (a tenant admin may only narrow it): the country
    calling codes and the kinds of line bots may call besides the project's region and personal lines (replaced)."""
    project = _project(target, project_id)
    guarded = Project.model_validate(
        {
            **project.model_dump(),
            "allowed_country_codes": countries,
            "allowed_number_types": list(dict.fromkeys([*PERSONAL_LINES, *number_types])),
        }
    )
    target.deps.projects.update_project(guarded)
    return {
        "project_id": project_id,
        "allowed_country_codes": guarded.allowed_country_codes,
        "allowed_number_types": guarded.allowed_number_types,
    }


def show_project(target: Target, project_id: str) -> dict[str, Any]:
    project = _project(target, project_id)
    return {
        "project": project.model_dump(mode="json"),
        "server_url": target.deps.pbx_settings.read(project_id).server_url,
        "secret": "(in SSM, SecureString)",
        "employees": [e.model_dump(mode="json") for e in target.deps.employees.list_employees(project_id)],
        "tokens": project_admin.list_tokens(target.deps, project),
    }


def list_projects(target: Target) -> list[dict[str, Any]]:
    """Every project: id, name, region, messengers (a scan of the table; never a secret)."""
    return [
        {"project_id": p.id, "name": p.name, "default_region": p.default_region, "messengers": p.messengers}
        for p in ProjectStore(target.storage).list_projects()
    ]


def list_tokens(target: Target, project_id: str) -> list[dict[str, Any]]:
    return project_admin.list_tokens(target.deps, _project(target, project_id))


def delete_employee(target: Target, project_id: str, employee_id: str) -> None:
    project_admin.delete_employee(target.deps, _project(target, project_id), employee_id)


def set_employee(
    target: Target, *, project_id: str, employee_id: str, name: str, method: CallMethod, short_number: str | None
) -> Employee:
    _project(target, project_id)
    employee = Employee(id=employee_id, name=name, call_method=method, short_number=short_number)
    target.deps.employees.put_employee(project_id, employee)
    return employee


def list_employees(target: Target, project_id: str) -> list[Employee]:
    _project(target, project_id)
    return target.deps.employees.list_employees(project_id)


def revoke_token(target: Target, project_id: str, token_id: str) -> None:
    project_admin.revoke_token(target.deps, _project(target, project_id), token_id)


def add_client(
    target: Target, *, project_id: str, channel: str, phone: str | None, variables: dict[str, str]
) -> Client:
    """A client with variables, its phone index entries written in the same transaction."""
    project = _project(target, project_id)
    client = build_client(project, channel=channel, phone=phone, variables=variables)
    ClientStore(target.storage).add(project, client)
    return client


def import_clients(
    target: Target, project_id: str, path: Path, *, update: bool = False, dry_run: bool = False, progress: bool = True
) -> ImportReport:
    project = _project(target, project_id)
    return client_import.import_clients(
        ClientStore(target.storage),
        project,
        path,
        update=update,
        dry_run=dry_run,
        progress=client_import.progress_bar if progress else None,
    )


def list_calls(target: Target, project_id: str, *, client_id: str | None, limit: int) -> list[dict[str, Any]]:
    """Calls of one client (newest first), or of the whole project (newest received first)."""
    _project(target, project_id)
    records = CallRecordStore(target.storage)
    if client_id:
        found = records.of_client(project_id, client_id, limit=limit)
    else:
        found = records.of_project(project_id, limit=limit)
    return [CallAnswer.of(r).model_dump(mode="json") for r in found]


def create_token(
    target: Target, project_id: str, *, role: Role = "bot", employee_id: str | None = None
) -> tuple[str, str]:
    """A new token of an existing project: (token_id, token). The token is shown once, stored as a hash. An operator
    token acts as an existing employee of the project (the admin API's rule: another one is not found)."""
    project = _project(target, project_id)
    if (role == "operator") != (employee_id is not None):
        raise InvalidInput.for_field(
            "employee", "an operator token names its employee, and only an operator token does"
        )
    if employee_id is not None:
        issued = project_admin.issue_operator_token(target.deps, project, employee_id)
        return issued["token_id"], issued["token"]
    return issue_token(target.deps.tokens, project_id, role=role)


# -- the project's PBX ----------------------------------------------------------------------------------------------
def pbx_connection(target: Target, project_id: str) -> PbxConnection:
    """The project's PBX connection: server_url and secret (decrypted) from SSM, method names from the project."""
    project = _project(target, project_id)
    credentials = target.deps.pbx_settings.read(project_id)
    return connection_for(project, credentials, timeout_seconds=PBX_TIMEOUT_SECONDS)


def pbx_ping(target: Target, project_id: str, *, client: PbxClient | None = None) -> dict[str, Any]:
    """`ping` the project's PBX: proves the URL, the secret and the auth mode (PbxError / PbxTimeout otherwise)."""
    conn = pbx_connection(target, project_id)
    started = time.monotonic()
    reply = (client or target.pbx).ping(conn)
    return {
        "project_id": project_id,
        "server_url": conn.server_url,
        "auth_mode": conn.auth_mode,
        "reply": reply,
        "ms": round((time.monotonic() - started) * 1000),
    }


def pbx_methods(target: Target, project_id: str, *, client: PbxClient | None = None) -> list[str]:
    """The method names the project's PBX lists (`get-method-list`): where the real originate names show up."""
    conn = pbx_connection(target, project_id)
    return (client or target.pbx).method_list(conn)


def pbx_points(target: Target, project_id: str, *, client: PbxClient | None = None) -> list[str]:
    """The extensions the project's PBX lists (`get-points`): the short numbers its employees may have."""
    conn = pbx_connection(target, project_id)
    return (client or target.pbx).points(conn)


# -- call events' endpoints (the admin API's use cases) ----------------------------------------------------------------
def add_endpoint(
    target: Target, project_id: str, *, url: str, description: str, event_types: list[str] | None
) -> dict[str, Any]:
    request = EndpointCreate.model_validate({"url": url, "description": description, "event_types": event_types})
    return call_events.add_endpoint(target.events, _project(target, project_id), request)


def list_endpoints(target: Target, project_id: str) -> dict[str, Any]:
    return call_events.endpoints_view(target.events, _project(target, project_id))


def delete_endpoint(target: Target, project_id: str, endpoint_id: str) -> None:
    call_events.delete_endpoint(target.events, _project(target, project_id), endpoint_id)


def rotate_endpoint_secret(target: Target, project_id: str, endpoint_id: str, *, grace_hours: float) -> dict[str, Any]:
    SecretRotation(grace_hours=grace_hours)  # the API's bounds (0-72)
    return call_events.rotate_secret(target.events, _project(target, project_id), endpoint_id, grace_hours=grace_hours)


def endpoint_deliveries(target: Target, project_id: str, endpoint_id: str) -> dict[str, Any]:
    return call_events.deliveries_view(target.events, _project(target, project_id), endpoint_id)


def replay_event(target: Target, project_id: str, event_id: str) -> dict[str, Any]:
    return call_events.replay_event(target.events, _project(target, project_id), event_id)


def replay_failed(target: Target, project_id: str, endpoint_id: str, since: str) -> dict[str, Any]:
    when = ReplaySince.model_validate({"since": since}).since
    return call_events.replay_failed(target.events, _project(target, project_id), endpoint_id, when)


def _project(target: Target, project_id: str) -> Project:
    project = target.deps.projects.get_project(project_id)
    if project is None:
        raise NotFound(f"project {project_id} not found")
    return project
