"""Projects, tokens and employees in DynamoDB + SSM (moto), through the admin operations the CLI uses."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import pytest
from fixtures.projects import PBX_SECRET
from support import IN_PROCESS_STACK

from iptel_admin import admin, cli
from iptelefon.data.pbx_settings import get_pbx_credentials
from iptelefon.domain.errors import InvalidInput, Unauthorized
from iptelefon.domain.hashes import sha256_hex
from iptelefon.entry.dependencies import auth_deps
from iptelefon.usecases.auth import authenticate


def test_create_project_keeps_the_secret_only_in_ssm_as_securestring(project: Any) -> None:
    # Given a created project
    ssm = boto3.client("ssm")
    # Then the secret is a SecureString in SSM under the stage prefix
    parameter = ssm.get_parameter(Name="/iptelefon-connector/test/projects/proj-a/secret")["Parameter"]
    assert parameter["Type"] == "SecureString"
    # And no DynamoDB item holds it in clear
    items = boto3.client("dynamodb").scan(TableName="local-MainTable")["Items"]
    assert items and PBX_SECRET not in json.dumps(items)


def test_webhook_secret_hash_finds_the_project(project: Any, admin_target: Any) -> None:
    # Given a project; When looked up by sha256 of its secret; Then it is found in one key lookup
    assert admin_target.deps.projects.find_webhook_secret(sha256_hex(PBX_SECRET))["project_id"] == "proj-a"
    assert admin_target.deps.projects.find_webhook_secret(sha256_hex("other")) is None


def test_pbx_credentials_are_read_decrypted_through_parameters(project: Any) -> None:
    # Given a project; When the Lambda side reads its PBX connection; Then both values come back
    credentials = get_pbx_credentials("proj-a")
    assert credentials.server_url == "https://pbx.test/b3/api/v2/start.php"
    assert credentials.secret == PBX_SECRET
    assert PBX_SECRET not in repr(credentials)


def test_issued_token_authenticates_its_own_project_only(project: Any, other_project: Any, admin_target: Any) -> None:
    # Given two projects with a token each
    # When each token is checked
    # Then each names its own project
    assert authenticate(auth_deps(), f"Bearer {project.token}").project.id == "proj-a"
    assert authenticate(auth_deps(), f"bearer {other_project.token}").project.id == "proj-b"


def test_token_is_stored_only_as_a_hash(project: Any) -> None:
    items = json.dumps(boto3.client("dynamodb").scan(TableName="local-MainTable")["Items"])
    assert project.token not in items
    assert sha256_hex(project.token) in items
    assert len(project.token) >= 43  # 32 random bytes, url-safe base64


@pytest.mark.parametrize("header", [None, "", "Bearer", "Basic abc", "Bearer iptb_unknown"])
def test_bad_authorization_headers_are_unauthorized(header: str | None, project: Any, admin_target: Any) -> None:
    with pytest.raises(Unauthorized):
        authenticate(auth_deps(), header)


def test_duplicate_project_id_is_refused(project: Any, admin_target: Any) -> None:
    with pytest.raises(InvalidInput, match="already exists"):
        admin.create_project(
            admin_target,
            name="again",
            server_url="https://pbx.test/start.php",
            secret="another-secret-123",
            messengers=[],
            project_id="proj-a",
        )


@pytest.mark.parametrize("url", ["ftp://pbx/start.php", "http://pbx.example/start.php", "start.php", ""])
def test_server_url_must_be_a_full_https_url(url: str, admin_target: Any) -> None:
    with pytest.raises(InvalidInput, match="server_url"):
        admin.create_project(admin_target, name="x", server_url=url, secret="secret-12345", messengers=[])


def test_api_employee_needs_a_short_number(project: Any, admin_target: Any) -> None:
    with pytest.raises(ValueError, match="short_number"):
        admin.set_employee(
            admin_target, project_id="proj-a", employee_id="e1", name="E", method="api", short_number=None
        )


def test_cli_creates_shows_a_project_and_sets_an_employee(
    aws: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a stack file like the one `make run` writes (endpoint null: the in-process moto)
    stack = tmp_path / "stack.json"
    stack.write_text(json.dumps({**IN_PROCESS_STACK, "api_url": "http://127.0.0.1:3000"}))
    # When a project is created with the CLI
    code = cli.main(
        [
            "--stack-file",
            str(stack),
            "project",
            "create",
            "--name",
            "Shop",
            "--server-url",
            "https://a00.abc.ru/b3/api/v2/start.php",
            "--secret",
            "cli-secret-1234567890",
            "--messenger",
            "whatsapp",
            "--allow-country",
            "375",
            "--allow-number-type",
            "toll_free",
        ]
    )
    created = json.loads(capsys.readouterr().out)
    # Then it prints the id, the webhook URL and a token once
    assert code == 0
    assert created["webhook_url"] == "http://127.0.0.1:3000/iptelefon_webhook/cli-secret-1234567890"
    assert created["token"].startswith("iptb_")
    # And an employee can be set and the project shown without its secret
    assert (
        cli.main(
            [
                "--stack-file",
                str(stack),
                "employee",
                "set",
                "--project",
                created["project_id"],
                "--id",
                "346",
                "--name",
                "Anna",
                "--method",
                "api",
                "--short-number",
                "346",
            ]
        )
        == 0
    )
    capsys.readouterr()
    assert cli.main(["--stack-file", str(stack), "project", "show", created["project_id"]]) == 0
    shown = capsys.readouterr().out
    assert "cli-secret-1234567890" not in shown
    assert json.loads(shown)["employees"][0]["short_number"] == "346"
    assert json.loads(shown)["project"]["messengers"] == ["whatsapp"]
    # And the toll-fraud guard adds what was allowed to the project's own region and personal lines
    assert json.loads(shown)["project"]["allowed_country_codes"] == [375]
    assert json.loads(shown)["project"]["allowed_number_types"] == ["fixed_line", "mobile", "toll_free"]


def test_cli_reports_errors_without_a_traceback(aws: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Given no local stack file
    code = cli.main(["--stack-file", str(tmp_path / "missing.json"), "project", "show", "x"])
    # Then a clear message and exit code 2
    assert code == 2
    assert "make run" in capsys.readouterr().err
