"""Rotating a project's PBX secret: the new webhook URL works at once, the old one for a grace period, then 404."""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path
from typing import Any

import pytest
from fixtures.projects import PBX_SECRET
from support import IN_PROCESS_STACK, answer_json, webhook_event

from iptel_admin import admin, cli
from iptelefon.data.pbx_settings import get_pbx_credentials, ssm_provider
from iptelefon.domain.errors import Conflict, InvalidInput
from iptelefon.entry import dependencies
from webhook.handler import lambda_handler as webhook_handler

NEW_SECRET = "pbx-secret-rotated-0001"


def set_webhook_clock(monkeypatch: pytest.MonkeyPatch, moment: float) -> None:
    """The webhook handler's use case sees `moment` as the time now."""
    built = dependencies.webhook_deps()
    monkeypatch.setattr(dependencies, "webhook_deps", lambda: dataclasses.replace(built, clock=lambda: moment))


def post(context: Any, secret: str, call_id: str) -> dict[str, Any]:
    form = {"id": call_id, "calltype": "IN", "src": "79004443322", "talktime": "5"}
    return webhook_handler(webhook_event(secret, form), context)  # type: ignore[no-any-return]


def fresh_ssm() -> None:
    ssm_provider().clear_cache()  # a warm Lambda reads the new secret once its cache expires


def test_after_a_rotation_both_urls_work_during_the_grace_period(
    project: Any, admin_target: Any, lambda_context: Any
) -> None:
    # When the admin rotates the secret with a day of grace
    rotated = admin.rotate_secret(admin_target, "proj-a", NEW_SECRET, grace_hours=24)
    fresh_ssm()

    # Then the new secret is in SSM, the CLI prints the new webhook URL, and both URLs take calls
    assert get_pbx_credentials("proj-a").secret == NEW_SECRET
    assert rotated["webhook_url"].endswith(f"/iptelefon_webhook/{NEW_SECRET}")
    assert post(lambda_context, NEW_SECRET, "new-1")["statusCode"] == 200
    assert post(lambda_context, PBX_SECRET, "old-1")["statusCode"] == 200


def test_after_the_grace_period_the_old_url_is_404(
    project: Any, admin_target: Any, lambda_context: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a rotation with an hour of grace, and that hour gone by
    admin.rotate_secret(admin_target, "proj-a", NEW_SECRET, grace_hours=1)
    fresh_ssm()
    later = time.time() + 3601
    set_webhook_clock(monkeypatch, later)

    # Then the old URL is a 404 like any unknown secret, and the new one works
    old = post(lambda_context, PBX_SECRET, "old-2")
    assert (old["statusCode"], answer_json(old)["error"]) == (404, "not_found")
    assert post(lambda_context, NEW_SECRET, "new-2")["statusCode"] == 200


def test_a_rotation_can_be_run_again_with_the_same_secret(project: Any, admin_target: Any) -> None:
    admin.rotate_secret(admin_target, "proj-a", NEW_SECRET)
    admin.rotate_secret(admin_target, "proj-a", NEW_SECRET)  # e.g. after SSM failed half-way the first time
    fresh_ssm()
    assert get_pbx_credentials("proj-a").secret == NEW_SECRET


def test_another_projects_secret_is_refused(project: Any, other_project: Any, admin_target: Any) -> None:
    with pytest.raises(Conflict, match="cannot be used: choose another one"):
        admin.rotate_secret(admin_target, "proj-a", "pbx-secret-of-project-b")


@pytest.mark.parametrize("secret", ["has/slash-123", "has?query-123", "has#hash-1234", "per%cent-1234", "with space1"])
def test_a_secret_that_cannot_stand_in_a_url_path_is_refused(secret: str, project: Any, admin_target: Any) -> None:
    with pytest.raises(InvalidInput, match="URL path") as refused:
        admin.rotate_secret(admin_target, "proj-a", secret)
    assert refused.value.details[0]["field"] == "secret"
    with pytest.raises(InvalidInput, match="URL path"):
        admin.create_project(
            admin_target, name="X", server_url="https://pbx.test/api/v2/start.php", secret=secret, messengers=[]
        )


def test_the_cli_rotates_and_prints_the_new_webhook_url(
    project: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a stack file like the one `make run` writes (endpoint null: the in-process moto)
    stack = tmp_path / "stack.json"
    stack.write_text(json.dumps({**IN_PROCESS_STACK, "api_url": "http://127.0.0.1:3000"}))
    # When the admin rotates the secret, then the CLI prints the new webhook URL and when the old one stops
    code = cli.main(["--stack-file", str(stack), "project", "rotate-secret", "proj-a", "--secret", NEW_SECRET])
    printed = json.loads(capsys.readouterr().out)
    assert code == 0
    assert printed["webhook_url"] == f"http://127.0.0.1:3000/iptelefon_webhook/{NEW_SECRET}"
    assert "old_webhook_url_valid_until" in printed
    assert PBX_SECRET not in json.dumps(printed)


# -- a random webhook token instead of the PBX secret in the URL -------------------------------------------------------
def path_secret(webhook_url: str) -> str:
    return webhook_url.rsplit("/", 1)[1]


def everything_stored(aws: None) -> str:
    """Every item of the table as text: what a reader of the database could see."""
    import boto3

    from iptelefon.platform.settings import get_settings

    table = boto3.resource("dynamodb").Table(get_settings().table_name)
    return json.dumps(table.scan()["Items"], default=str)


def test_a_project_with_a_random_webhook_token_keeps_the_pbx_secret_out_of_its_url(
    aws: None, admin_target: Any, lambda_context: Any
) -> None:
    # When a project is created with --webhook-token random
    created = admin.create_project(
        admin_target,
        project_id="tok",
        name="Token project",
        server_url="https://pbx.test/b3/api/v2/start.php",
        secret=PBX_SECRET,
        messengers=[],
        webhook_path="random",
    )
    token = path_secret(str(created.webhook_url))

    # Then its webhook URL ends with a random token, not the secret; the token works and the secret's URL is a 404
    assert token != PBX_SECRET and len(token) >= 43
    assert post(lambda_context, token, "tok-1")["statusCode"] == 200
    assert post(lambda_context, PBX_SECRET, "tok-2")["statusCode"] == 404
    # and the token is kept nowhere in clear, only its hash
    assert token not in everything_stored(aws)
    # A new PBX secret leaves the webhook URL as it was
    rotated = admin.rotate_secret(admin_target, "tok", NEW_SECRET)
    fresh_ssm()
    assert "webhook_url" not in rotated and get_pbx_credentials("tok").secret == NEW_SECRET
    assert post(lambda_context, token, "tok-3")["statusCode"] == 200


def test_a_new_webhook_token_replaces_the_secret_in_the_url_after_a_grace_period(
    project: Any, admin_target: Any, lambda_context: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a project whose PBX posts to the secret's URL (its settings now cached by a warm Lambda)
    assert post(lambda_context, PBX_SECRET, "before")["statusCode"] == 200
    # When the admin issues a random webhook token with an hour of grace
    rotated = admin.rotate_webhook_token(admin_target, "proj-a", grace_hours=1)
    token = path_secret(rotated["webhook_url"])
    # Then the new URL works at once, the secret's URL still works during the hour, and not after it
    assert post(lambda_context, token, "new-1")["statusCode"] == 200
    assert post(lambda_context, PBX_SECRET, "old-1")["statusCode"] == 200
    later = time.time() + 3601
    set_webhook_clock(monkeypatch, later)
    assert post(lambda_context, PBX_SECRET, "old-2")["statusCode"] == 404
    assert post(lambda_context, token, "new-2")["statusCode"] == 200
    # and the PBX secret itself did not change
    fresh_ssm()
    assert get_pbx_credentials("proj-a").secret == PBX_SECRET


def test_a_second_webhook_token_retires_the_first(project: Any, admin_target: Any, lambda_context: Any) -> None:
    first = path_secret(admin.rotate_webhook_token(admin_target, "proj-a", grace_hours=0)["webhook_url"])
    second = path_secret(admin.rotate_webhook_token(admin_target, "proj-a", grace_hours=0)["webhook_url"])
    assert post(lambda_context, second, "t-2")["statusCode"] == 200
    assert post(lambda_context, first, "t-1")["statusCode"] == 404


def test_the_cli_creates_a_project_with_a_random_webhook_token(
    aws: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stack = tmp_path / "stack.json"
    stack.write_text(json.dumps({**IN_PROCESS_STACK, "api_url": "http://127.0.0.1:3000"}))
    create = ["project", "create", "--name", "T", "--id", "tok-cli", "--webhook-token", "random"]
    pbx = ["--server-url", "https://pbx.test/b3/api/v2/start.php", "--secret", PBX_SECRET]
    code = cli.main(["--stack-file", str(stack), *create, *pbx])
    printed = json.loads(capsys.readouterr().out)
    assert code == 0
    assert printed["webhook_url"].startswith("http://127.0.0.1:3000/iptelefon_webhook/")
    assert PBX_SECRET not in json.dumps(printed)
    code = cli.main(["--stack-file", str(stack), "project", "rotate-webhook-token", "tok-cli"])
    rotated = json.loads(capsys.readouterr().out)
    assert code == 0 and rotated["webhook_url"] != printed["webhook_url"]


def test_a_new_secret_works_at_once_in_a_warm_lambda(project: Any, admin_target: Any, lambda_context: Any) -> None:
    # Given a warm webhook Lambda that read the project's PBX secret (SSM cached for minutes)
    assert post(lambda_context, PBX_SECRET, "warm-1")["statusCode"] == 200
    # When the admin sets a new secret elsewhere (the console's Lambda, the CLI), this Lambda's cache untouched
    admin.rotate_secret(admin_target, "proj-a", NEW_SECRET, grace_hours=24)
    # Then the new webhook URL works at once (the README's promise), the old one still within its grace period
    assert post(lambda_context, NEW_SECRET, "warm-2")["statusCode"] == 200
    assert post(lambda_context, PBX_SECRET, "warm-3")["statusCode"] == 200
