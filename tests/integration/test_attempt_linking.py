"""A bot's call attempt is linked to the call the PBX reports when it completes, and readable by its attempt_id."""

from __future__ import annotations

from typing import Any

from fixtures.projects import PBX_SECRET
from support import answer_json, api_event, webhook_event

from employee_call.handler import lambda_handler as employee_call_handler
from read_api.handler import lambda_handler as read_api_handler
from webhook.handler import lambda_handler as webhook_handler


def _start_call(project: Any, context: Any, status: str = "initiated") -> str:
    event = api_event(
        "POST",
        "/v1/calls/employee",
        "/v1/calls/employee",
        token=project.token,
        body={"client_phone": "8 (900) 444-33-22", "short_employee_phone": "346"},
    )
    answer = employee_call_handler(event, context)
    assert (answer["statusCode"], answer_json(answer)["status"]) == (202, status), answer["body"]
    return str(answer_json(answer)["attempt_id"])


def _completion(call_id: str, calltype: str = "OUT") -> dict[str, Any]:
    form = {"id": call_id, "calltype": calltype, "src": "346", "dst": "79004443322", "exten": "346", "talktime": "40"}
    return webhook_event(PBX_SECRET, form)


def _read_call(project: Any, call_id: str, context: Any) -> dict[str, Any]:
    event = api_event(
        "GET", "/v1/calls/{call_id}", f"/v1/calls/{call_id}", path_params={"call_id": call_id}, token=project.token
    )
    answer = read_api_handler(event, context)
    assert answer["statusCode"] == 200, answer["body"]
    return dict(answer_json(answer))


def test_attempt_is_readable_as_initiated_before_the_webhook(project: Any, fake_pbx: Any, lambda_context: Any) -> None:
    attempt_id = _start_call(project, lambda_context)
    shown = _read_call(project, attempt_id, lambda_context)
    assert (shown["record"], shown["status"], shown["client_phone"], shown["call"]) == (
        "attempt",
        "initiated",
        "79004443322",
        None,
    )


def test_outgoing_completion_links_the_attempt_to_the_call_and_client(
    project: Any, fake_pbx: Any, lambda_context: Any
) -> None:
    # Given a bot-started call (the fake PBX answers with its id "pbx-1")
    attempt_id = _start_call(project, lambda_context)
    # When the PBX reports the completed outgoing call
    recorded = answer_json(webhook_handler(_completion("pbx-1"), lambda_context))
    # Then the attempt is completed by that call, and its client is the one the webhook matched
    shown = _read_call(project, attempt_id, lambda_context)
    assert shown["status"] == "completed" and shown["completed_by_call_key"] == "pbx-1"
    assert shown["call"]["client_id"] == recorded["client_id"]


def test_an_unknown_attempt_is_completed_by_its_webhook_like_an_initiated_one(
    project: Any, fake_pbx: Any, lambda_context: Any
) -> None:
    import httpx

    # Given a call whose PBX reply could not be read (the PBX may have started it)
    fake_pbx.reply = httpx.Response(200, text="<html>Service temporarily overloaded</html>")
    attempt_id = _start_call(project, lambda_context, status="unknown")
    shown = _read_call(project, attempt_id, lambda_context)
    assert (shown["status"], shown["pbx_call_id"]) == ("unknown", None)
    assert "not JSON" in shown["reason"]["message"]
    # When the PBX reports the completed call after all
    recorded = answer_json(webhook_handler(_completion("late-1"), lambda_context))
    # Then the attempt is completed by it: the bot learns the call did happen
    shown = _read_call(project, attempt_id, lambda_context)
    assert (shown["status"], shown["completed_by_call_key"]) == ("completed", "late-1")
    assert shown["call"]["client_id"] == recorded["client_id"]


def test_incoming_call_from_the_same_phone_does_not_complete_the_attempt(
    project: Any, fake_pbx: Any, lambda_context: Any
) -> None:
    attempt_id = _start_call(project, lambda_context)
    webhook_handler(_completion("in-1", calltype="IN"), lambda_context)
    assert _read_call(project, attempt_id, lambda_context)["status"] == "initiated"


def test_another_projects_token_cannot_read_the_attempt(
    project: Any, other_project: Any, fake_pbx: Any, lambda_context: Any
) -> None:
    attempt_id = _start_call(project, lambda_context)
    event = api_event(
        "GET",
        "/v1/calls/{call_id}",
        f"/v1/calls/{attempt_id}",
        path_params={"call_id": attempt_id},
        token=other_project.token,
    )
    assert read_api_handler(event, lambda_context)["statusCode"] == 404
