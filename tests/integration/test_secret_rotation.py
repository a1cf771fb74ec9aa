"""Rotating a project's PBX secret: the new webhook URL works at once, the old one for a grace period, then 404."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import PBX_SECRET
from support import IN_PROCESS_STACK, answer_json, webhook_event

from iptel_admin import admin, cli
from iptelefon.errors import Conflict, InvalidInput
from iptelefon.project_config import get_pbx_credentials, ssm_provider
from webhook.handler import lambda_handler as webhook_handler

NEW_SECRET = "pbx-secret-rotated-0001"


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
    monkeypatch.setattr("iptelefon.webhook.time.time", lambda: later)

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
    with pytest.raises(Conflict, match="another project"):
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
