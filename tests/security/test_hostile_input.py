"""Text from the PBX is data: what a hostile or broken PBX sends cannot steer how a notification or variable shows.

Through the real webhook handler (moto in-process); the client card is read back as the read API shows it.
"""

from __future__ import annotations

from typing import Any

from fixtures.projects import PBX_SECRET
from support import answer_json, webhook_event

from iptelefon.data.call_records import call_sk
from iptelefon.data.clients import ClientStore
from iptelefon.data.gateway import get_storage, project_pk
from read_api.handler import lambda_handler as read_api_handler
from webhook.handler import lambda_handler as webhook_handler

RLO = "\u202e"  # RIGHT-TO-LEFT OVERRIDE: "346<RLO>gpj.exe" shows as "346exe.jpg"
BIDI_AND_INVISIBLE = [RLO, "\u2066", "\u2069", "\u200b", "\u200f", "\ufeff", "\x1b", "\x00"]


def post(context: Any, form: dict[str, str]) -> dict[str, Any]:
    return webhook_handler(webhook_event(PBX_SECRET, form), context)  # type: ignore[no-any-return]


def card(context: Any, project: Any, client_id: str) -> dict[str, Any]:
    from support import api_event

    event = api_event(
        "GET",
        "/v1/clients/{client_id}",
        f"/v1/clients/{client_id}",
        path_params={"client_id": client_id},
        token=project.token,
    )
    return answer_json(read_api_handler(event, context))  # type: ignore[no-any-return]


def test_bidi_overrides_and_control_characters_never_reach_a_notification(lambda_context: Any, project: Any) -> None:
    # Given a PBX that puts a bidi override, isolates, zero-width and control characters into the employee and group
    form = {
        "id": "hostile-1",
        "calltype": "IN",
        "src": "79004443322",
        "exten": f"346{RLO}gpj.exe\u200b",
        "group": "\u20663\u2069\x1b[31m",
        "talktime": "10",
    }

    # When it posts the call
    answer = post(lambda_context, form)

    # Then the notification shows the text without any of them
    assert answer["statusCode"] == 200, answer
    text = card(lambda_context, project, answer_json(answer)["client_id"])["dialog"][0]["text"]
    assert not any(char in text for char in BIDI_AND_INVISIBLE)
    assert "сотрудник 346gpj.exe" in text and "группа 3[31m" in text


def test_html_from_the_pbx_is_kept_as_text_for_the_renderer_to_escape(lambda_context: Any, project: Any) -> None:
    # Given an employee field with markup; then it is stored as the text it is (the README asks renderers to escape)
    form = {"id": "hostile-2", "calltype": "IN", "src": "79004443322", "exten": "<b>346</b>", "talktime": "10"}
    answer = post(lambda_context, form)
    text = card(lambda_context, project, answer_json(answer)["client_id"])["dialog"][0]["text"]
    assert "сотрудник <b>346</b>" in text


def test_credentials_in_a_recording_link_are_dropped_everywhere(lambda_context: Any, project: Any) -> None:
    # Given a recording link with a user and password in it
    link = "https://admin:s3cret@pbx.example/rec/1.mp3"

    # When the PBX posts the call
    answer = post(lambda_context, {"id": "hostile-3", "calltype": "IN", "src": "79004443322", "link": link})

    # Then the call and its recording carry the link without them; the variable and the notification hold our stable
    # link to it (issue 25)
    shown = card(lambda_context, project, answer_json(answer)["client_id"])
    assert "s3cret" not in str(shown)
    record = get_storage().get(project_pk(project.project.id), call_sk("hostile-3"))
    assert record is not None and record["record_link"] == "https://pbx.example/rec/1.mp3"
    assert shown["variables"]["iptelefon_call_record_link"] == record["recording_link"]
    recording = get_storage().get(f"RECORDING#{record['recording_id']}", "RECORDING")
    assert recording is not None and recording["source_link"] == "https://pbx.example/rec/1.mp3"


def test_a_calldate_in_the_year_9999_is_a_400_and_the_request_is_kept(lambda_context: Any, project: Any) -> None:
    # Given a call dated 9999 (it would sort first in every list forever)
    form = {"id": "hostile-4", "calltype": "IN", "src": "79004443322", "calldate": "9999-12-31 23:59:59"}

    # When the PBX posts it, then 400 naming the field, no client or call, and the raw request kept for the project
    answer = post(lambda_context, form)
    assert answer["statusCode"] == 400, answer
    assert "started_at" in str(answer_json(answer))
    assert ClientStore(get_storage()).match(project.project.id, "79004443322") == []
    (kept,) = get_storage().query(project_pk(project.project.id), "REJECTED#")
    assert "9999-12-31" in kept["body"]


def test_a_rejected_request_with_a_huge_query_is_kept_within_dynamodbs_item_limit(
    lambda_context: Any, project: Any
) -> None:
    from support import api_event

    # Given an unreadable webhook (no phone) with 60,000 four-byte characters (240 KB) in its query and a 64 KiB body of
    # bytes that are not UTF-8 (each becomes a 3-byte replacement character when kept as text)
    query = {"note": "😀" * 60_000}
    event = api_event(
        "POST",
        "/iptelefon_webhook/{secret}",
        f"/iptelefon_webhook/{PBX_SECRET}",
        query=query,
        path_params={"secret": PBX_SECRET},
        headers={"Content-Type": "application/octet-stream"},
    )
    import base64

    event["body"], event["isBase64Encoded"] = base64.b64encode(b"\xff" * 65_536).decode(), True

    # When it is refused, then the raw request is kept (never a 500), trimmed, with its real sizes
    answer = webhook_handler(event, lambda_context)
    assert answer["statusCode"] == 400, answer
    (kept,) = get_storage().query(project_pk(project.project.id), "REJECTED#")
    assert kept["truncated"] is True and kept["body_bytes"] == 65_536
    assert kept["query_chars"] > len(kept["query"])
