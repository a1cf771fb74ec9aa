"""GET /v1/calls/live for the incoming-call card (issue 22), through the real handlers on moto: the client snapshot a
RINGING keeps, the strong ETag and `If-None-Match` → 304 without a body, an operator seeing its extension only."""

from __future__ import annotations

import json
from typing import Any

from fixtures.projects import PBX_SECRET
from support import answer_json, api_event

from iptel_admin import admin
from read_api.handler import lambda_handler as read_api_handler
from webhook.handler import lambda_handler as webhook_handler

PHONE = "79004443322"
LIVE = "/v1/calls/live"


def ring(context: Any, callid: str, *, exten: str = "346", status: str = "RINGING", phone: str = PHONE) -> None:
    body = {"cmd": "event", "callid": callid, "call-type": "IN", "phone": phone, "exten": exten, "call-status": status}
    event = api_event("POST", "/iptelefon_webhook/{secret}", f"/iptelefon_webhook/{PBX_SECRET}", body=body,
                      path_params={"secret": PBX_SECRET})  # fmt: skip
    assert webhook_handler(event, context)["statusCode"] == 200


def live(token: str, context: Any, if_none_match: str | None = None) -> dict[str, Any]:
    headers = {"If-None-Match": if_none_match} if if_none_match else None
    return dict(read_api_handler(api_event("GET", LIVE, LIVE, token=token, headers=headers), context))


def header(answer: dict[str, Any], name: str) -> str:
    """A header of a handler's answer (Powertools answers a REST event with `multiValueHeaders`)."""
    [value] = answer["multiValueHeaders"][name]
    return str(value)


def test_the_live_list_has_a_strong_etag_and_a_repeat_is_a_304_without_a_body(
    project: Any, lambda_context: Any
) -> None:
    # Given a call ringing
    ring(lambda_context, "c-1")
    first = live(project.token, lambda_context)
    tag = header(first, "ETag")
    # Then the tag is strong and names the body
    assert first["statusCode"] == 200 and tag.startswith('"') and not tag.startswith("W/")
    assert header(live(project.token, lambda_context), "ETag") == tag
    # When the poller sends it back (also weakly, or in a list), nothing changed: 304, no body, the same tag
    for sent in (tag, "W/" + tag, f'"other", {tag}', "*"):
        repeat = live(project.token, lambda_context, sent)
        assert (repeat["statusCode"], repeat["body"] or "", header(repeat, "ETag")) == (304, "", tag), sent
        assert header(repeat, "Cache-Control") == "no-store"
    # When the call is answered, the old tag gets the new list
    ring(lambda_context, "c-1", status="ACCEPTED")
    changed = live(project.token, lambda_context, tag)
    assert changed["statusCode"] == 200 and header(changed, "ETag") != tag
    assert [c["state"] for c in answer_json(changed)["calls"]] == ["answered"]


def test_the_card_carries_the_client_and_an_operator_sees_its_extension_only(
    project: Any, admin_target: Any, lambda_context: Any
) -> None:
    # Given a named client with a call behind it, ringing at 346, and a new number ringing at 347
    admin.add_client(admin_target, project_id="proj-a", channel="telephony", phone=PHONE, variables={"ФИО": "Анна"})
    history = {"cmd": "history", "callid": "old-1", "call-type": "IN", "phone": PHONE, "exten": "346",
               "call-status": "ANSWERED", "duration": 30}  # fmt: skip
    done = api_event("POST", "/iptelefon_webhook/{secret}", f"/iptelefon_webhook/{PBX_SECRET}", body=history,
                     path_params={"secret": PBX_SECRET})  # fmt: skip
    assert webhook_handler(done, lambda_context)["statusCode"] == 200
    ring(lambda_context, "c-346")
    ring(lambda_context, "c-347", exten="347", phone="79005556677")
    admin.set_employee(admin_target, project_id="proj-a", employee_id="347", name="Second", method="api",
                       short_number="347")  # fmt: skip
    _, operator_346 = admin.create_token(admin_target, "proj-a", role="operator", employee_id="346")
    _, operator_347 = admin.create_token(admin_target, "proj-a", role="operator", employee_id="347")
    _, admin_token = admin.create_token(admin_target, "proj-a", role="admin")

    def calls(token: str) -> list[dict[str, Any]]:
        return list(json.loads(live(token, lambda_context)["body"])["calls"])

    # Then the operator of 346 sees Анна's call with her last line, not new; 347 sees the new client only
    [anna] = calls(operator_346)
    assert (anna["call_key"], anna["client"]["display_name"], anna["client"]["is_new"]) == ("c-346", "Анна", False)
    assert [line["text"][:15] for line in anna["client"]["dialog"]] == ["Звонок завершён"]
    [new] = calls(operator_347)
    assert (new["call_key"], new["client"]["display_name"], new["client"]["is_new"]) == ("c-347", None, True)
    # And an admin and a bot see both; the answers (and so their tags) differ by who asks
    assert sorted(c["call_key"] for c in calls(admin_token)) == ["c-346", "c-347"]
    assert sorted(c["call_key"] for c in calls(project.token)) == ["c-346", "c-347"]
    assert header(live(operator_346, lambda_context), "ETag") != header(live(admin_token, lambda_context), "ETag")
