"""The admin and auth use cases on in-memory fakes (`tests/fakes/admin.py`): the rules, and SSM read once a request."""

from __future__ import annotations

import pytest
from fakes.admin import FakeClock, FakePbxSettings, FakeProjects, admin_deps, auth_deps

from iptelefon.domain.errors import Conflict, Forbidden, InvalidInput, NotFound, Unauthorized
from iptelefon.domain.hashes import sha256_hex
from iptelefon.domain.models import Employee, PbxCredentials, Project
from iptelefon.domain.requests import EmployeeUpdate, SettingsUpdate
from iptelefon.usecases import admin
from iptelefon.usecases.admin import AdminDeps
from iptelefon.usecases.auth import authenticate, issue_token

SECRET = "pbx-secret-1234567890"
API = "https://api.test/v1"


@pytest.fixture
def deps() -> AdminDeps:
    """Project `a` (its PBX secret in the webhook URL) with employee 346, and project `b` with employee b1."""
    built = admin_deps(FakeClock(1_700_000_000.0))
    for project_id, employee_id in (("a", "346"), ("b", "b1")):
        built.projects.create_project(Project(id=project_id, name=project_id.upper()), f"{SECRET}-{project_id}")
        built.pbx_settings.write(project_id, PbxCredentials("https://pbx.test/start.php", f"{SECRET}-{project_id}"))
        built.employees.put_employee(project_id, Employee(id=employee_id, name="E", call_method="app"))
    return built


def _project(deps: AdminDeps, project_id: str = "a") -> Project:
    project = deps.projects.get_project(project_id)
    assert project is not None
    return project


def _reads(deps: AdminDeps) -> int:
    assert isinstance(deps.pbx_settings, FakePbxSettings)
    return deps.pbx_settings.reads


def test_the_settings_view_reads_the_pbx_connection_once_and_never_answers_the_secret(deps: AdminDeps) -> None:
    view = admin.settings_view(deps, _project(deps), API)

    assert (view["server_url"], view["secret_set"], _reads(deps)) == ("https://pbx.test/start.php", True, 1)
    assert f"{SECRET}-a" not in str(view)
    assert view["webhook_url_template"] == f"{API}/iptelefon_webhook/{{secret}}"


def test_a_new_secret_is_one_read_and_keeps_the_old_webhook_url_until_its_grace_end(deps: AdminDeps) -> None:
    view = admin.update_settings(deps, _project(deps), SettingsUpdate(secret="pbx-secret-new1234567"), API)

    assert _reads(deps) == 1
    assert deps.pbx_settings.read("a") == PbxCredentials("https://pbx.test/start.php", "pbx-secret-new1234567")
    assert view["old_webhook_url_valid_until"] == "2023-11-15T22:13:20+00:00"  # the fake clock + 24 h
    projects = deps.projects
    assert isinstance(projects, FakeProjects)
    assert projects.lookups[sha256_hex("pbx-secret-new1234567")] == {"project_id": "a"}
    assert projects.lookups[sha256_hex(f"{SECRET}-a")]["valid_until"] == 1_700_000_000 + 24 * 3600


def test_a_settings_change_without_the_connection_writes_the_project_and_reads_ssm_once(deps: AdminDeps) -> None:
    view = admin.update_settings(deps, _project(deps), SettingsUpdate(group_method="call-group-2"), API)

    assert (view["group_method"], _project(deps).group_method, _reads(deps)) == ("call-group-2", "call-group-2", 1)
    assert "old_webhook_url_valid_until" not in view


@pytest.mark.parametrize(
    "secret", ["has/slash-1234567890", "has space 1234567890", "per%cent-1234567890", "short", "sixteen-chars-16"]
)
def test_a_secret_that_cannot_stand_in_a_url_path_is_invalid_input(deps: AdminDeps, secret: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        admin.update_settings(deps, _project(deps), SettingsUpdate(secret=secret), API)
    assert refused.value.status_code == 400
    assert deps.pbx_settings.read("a").secret == f"{SECRET}-a"  # nothing changed


def test_an_operator_token_is_issued_only_for_an_employee_of_the_admins_project(deps: AdminDeps) -> None:
    issued = admin.issue_operator_token(deps, _project(deps), "346")
    caller = authenticate(auth_deps(deps), f"Bearer {issued['token']}")
    assert (caller.project.id, caller.role, caller.employee_id) == ("a", "operator", "346")

    with pytest.raises(NotFound):
        admin.issue_operator_token(deps, _project(deps), "b1")  # project b's employee: as if it did not exist
    with pytest.raises(NotFound):
        admin.delete_employee(deps, _project(deps), "b1")
    assert deps.employees.get_employee("b", "b1") is not None


def test_an_employee_id_that_cannot_be_a_key_is_invalid_input(deps: AdminDeps) -> None:
    with pytest.raises(InvalidInput):
        admin.put_employee(deps, _project(deps), "../b1", EmployeeUpdate(name="X", call_method="app"))


def test_a_revoked_token_and_a_deleted_employees_token_are_unauthorized(deps: AdminDeps) -> None:
    bot_id, bot = issue_token(deps.tokens, "a")
    assert authenticate(auth_deps(deps), f"Bearer {bot}").role == "bot"
    operator = admin.issue_operator_token(deps, _project(deps), "346")

    admin.revoke_token(deps, _project(deps), bot_id)
    admin.delete_employee(deps, _project(deps), "346")

    for token in (bot, operator["token"]):
        with pytest.raises(Unauthorized):
            authenticate(auth_deps(deps), f"Bearer {token}")
    assert admin.employees_view(deps, _project(deps)) == {"employees": []}


# -- the admin's powers, bounded (issue 20) ---------------------------------------------------------------------------
def _lookups(deps: AdminDeps) -> dict[str, dict[str, object]]:
    assert isinstance(deps.projects, FakeProjects)
    return deps.projects.lookups


def test_a_server_url_on_another_host_needs_the_secret_in_the_same_request(deps: AdminDeps) -> None:
    moved = SettingsUpdate(server_url="https://pbx.elsewhere.test/start.php", auth_mode="bearer")
    with pytest.raises(InvalidInput) as refused:
        admin.update_settings(deps, _project(deps), moved, API)
    assert refused.value.details[0]["field"] == "secret"
    assert deps.pbx_settings.read("a").server_url == "https://pbx.test/start.php"
    assert _project(deps).auth_mode == "hash"  # nothing of the request was written


@pytest.mark.parametrize("server_url", ["https://pbx.test/other/start.php", "https://PBX.test:443/start.php"])
def test_the_same_origin_needs_no_secret(deps: AdminDeps, server_url: str) -> None:
    view = admin.update_settings(deps, _project(deps), SettingsUpdate(server_url=server_url), API)
    assert view["server_url"] == server_url


def test_a_refused_part_of_a_settings_change_writes_nothing(deps: AdminDeps) -> None:
    before = dict(_lookups(deps))
    update = SettingsUpdate(secret="pbx-secret-never-stored", allowed_number_types=["fixed_line", "premium_rate"])
    with pytest.raises(Forbidden, match="iptel project guard a"):
        admin.update_settings(deps, _project(deps), update, API)
    assert deps.pbx_settings.read("a").secret == f"{SECRET}-a"
    assert _lookups(deps) == before


def test_a_secret_of_another_project_is_refused_without_naming_it(deps: AdminDeps) -> None:
    with pytest.raises(Conflict) as refused:
        admin.update_settings(deps, _project(deps), SettingsUpdate(secret=f"{SECRET}-b"), API)
    assert refused.value.message == admin.SECRET_REFUSED  # the same words whoever holds it
    assert deps.pbx_settings.read("a").secret == f"{SECRET}-a"


def test_a_rotation_with_grace_zero_ends_every_earlier_secret_now(deps: AdminDeps) -> None:
    admin.update_settings(deps, _project(deps), SettingsUpdate(secret="pbx-secret-second-1234"), API)
    admin.update_settings(deps, _project(deps), SettingsUpdate(secret="pbx-secret-third-12345", grace_hours=0), API)
    now = 1_700_000_000
    lookups = _lookups(deps)
    assert lookups[sha256_hex(f"{SECRET}-a")]["valid_until"] == now
    assert lookups[sha256_hex("pbx-secret-second-1234")]["valid_until"] == now
    assert "valid_until" not in lookups[sha256_hex("pbx-secret-third-12345")]


@pytest.mark.parametrize("hours", [-0.5, 72.5])
def test_the_cli_grace_period_is_bounded_as_the_apis(deps: AdminDeps, hours: float) -> None:
    with pytest.raises(InvalidInput) as refused:
        admin.change_pbx_connection(deps, _project(deps), secret="pbx-secret-bounded-123", grace_hours=hours)
    assert refused.value.details[0]["field"] == "grace_hours"


def test_a_secret_kept_out_of_the_webhook_url_may_be_shorter(deps: AdminDeps) -> None:
    admin.rotate_webhook_token(deps, _project(deps), grace_hours=1)
    view = admin.update_settings(deps, _project(deps), SettingsUpdate(secret="short-12"), API)
    assert view["webhook_path"] == "random"
    assert deps.pbx_settings.read("a").secret == "short-12"
