"""Issue 20: a tenant admin's own powers, tried over HTTP through the local gateway as a hostile admin would.

One local stack for the module, run as a deployed stage runs: `--pbx-network public` (the PBX must be a public https
address; only `make run` allows this machine). A listener on 127.0.0.1 stands for every inward target (the Lambda
runtime API, moto, a metadata service): no refused `server_url` may ever reach it.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fixtures.inward_listener import INSIDE_MARKER, InwardListener
from support import LocalStackProcess

from iptel_admin import admin as cli_admin

OTHER_SECRET = "other-project-secret-0123456789"
SECURITY_HEADERS = {"cache-control": "no-store", "x-content-type-options": "nosniff"}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    local = LocalStackProcess.start(tmp_path_factory.mktemp("stack"), "--pbx-network", "public")
    info = local.wait_until_running(timeout=60)
    info["_local"] = local
    yield info
    local.stop(timeout=20)


@pytest.fixture(scope="module")
def listener() -> Iterator[InwardListener]:
    inward = InwardListener()
    yield inward
    inward.close()


@pytest.fixture(scope="module")
def target(stack: dict[str, Any]) -> cli_admin.Target:
    return cli_admin.local_target(Path(stack["_local"].stack_file))


def api(stack: dict[str, Any], method: str, path: str, role: str | None = "admin", **kwargs: Any) -> httpx.Response:
    headers = {"Authorization": f"Bearer {stack[f'{role}_token']}"} if role else {}
    return httpx.request(method, stack["api_url"] + path, headers=headers, timeout=30, **kwargs)


def put_settings(stack: dict[str, Any], **fields: Any) -> httpx.Response:
    return api(stack, "PUT", "/v1/settings", json=fields)


def webhook(stack: dict[str, Any], secret: str, call_id: str) -> httpx.Response:
    form = {"id": call_id, "calltype": "IN", "src": "79004443322", "talktime": "10", "exten": "346"}
    return httpx.post(f"{stack['api_url']}/iptelefon_webhook/{secret}", data=form, timeout=30)


# -- SSRF: no request goes inward -------------------------------------------------------------------------------------
INWARD_URLS = [
    "http://127.0.0.1:{port}/start.php",  # plain http and loopback
    "https://127.0.0.1:{port}/start.php",
    "https://localhost:{port}/start.php",  # a name that resolves to loopback
    "https://[::1]:{port}/start.php",
    "https://[::ffff:127.0.0.1]:{port}/start.php",  # loopback inside an IPv6 address
    "https://2130706433:{port}/start.php",  # 127.0.0.1 written as one number
    "https://0x7f.1:{port}/start.php",
    "https://169.254.169.254/latest/meta-data/",  # link-local: a cloud metadata service
    "https://10.0.0.1/start.php",
    "https://100.64.0.1/start.php",  # CGNAT
    "https://224.0.0.1/start.php",  # multicast
    "https://user:hunter2pw@127.0.0.1:{port}/start.php",  # userinfo
]


@pytest.mark.parametrize("url", INWARD_URLS)
def test_a_server_url_that_points_inward_never_gets_a_request(
    stack: dict[str, Any], listener: InwardListener, url: str
) -> None:
    # Given an admin who points the PBX at an inward address (with a new secret: the origin rule is not the reason)
    server_url = url.format(port=listener.port)
    secret = f"inward-secret-{abs(hash(url)):020d}"
    changed = put_settings(stack, server_url=server_url, secret=secret, auth_mode="bearer")
    # When the settings are taken, the check is asked to reach it
    if changed.status_code == 200:
        check = api(stack, "POST", "/v1/settings/check")
        points = api(stack, "GET", "/v1/pbx/points")
        # Then the check is refused with a short reason, never the answer of what listens there
        for answer in (check, points):
            assert answer.status_code == 502, answer.text
            assert "refused" in answer.json()["message"]
            assert INSIDE_MARKER not in answer.text
    else:
        # Or the address itself is refused, naming server_url
        assert changed.status_code == 400, changed.text
        assert changed.json()["details"][0]["field"] == "server_url"
        assert "hunter2pw" not in changed.text
    # And nothing ever reached the listener
    assert listener.accepted == 0


def test_a_new_origin_needs_the_secret_in_the_same_request(stack: dict[str, Any]) -> None:
    # Given the stored PBX secret, when an admin moves the PBX to another host without giving the secret
    moved = put_settings(stack, server_url="https://pbx.attacker.example/start.php", auth_mode="bearer")
    # Then nothing changes: the stored secret never follows a new host
    assert moved.status_code == 400, moved.text
    assert moved.json()["details"][0]["field"] == "secret"
    assert "attacker" not in api(stack, "GET", "/v1/settings").json()["server_url"]


def test_the_same_origin_takes_a_new_path_without_the_secret(stack: dict[str, Any]) -> None:
    current = urllib.parse.urlsplit(api(stack, "GET", "/v1/settings").json()["server_url"])
    moved = put_settings(stack, server_url=f"{current.scheme}://{current.netloc}/other/start.php")
    # A stack run as a deployed stage still holds the demo's http://127.0.0.1 address, which it cannot take again
    assert moved.status_code in (200, 400), moved.text
    if moved.status_code == 400:
        assert moved.json()["details"][0]["field"] == "server_url"


# -- answers ----------------------------------------------------------------------------------------------------------
def test_every_api_answer_says_no_store_and_nosniff(stack: dict[str, Any]) -> None:
    answers = [
        api(stack, "GET", "/v1/settings"),
        api(stack, "GET", "/v1/settings", role=None),  # 401
        api(stack, "GET", "/v1/me", role="bot"),
        api(stack, "POST", "/v1/employees/346/operator-token"),  # 201: a new token
        put_settings(stack, auth_mode="neither"),  # 400
        api(stack, "GET", "/v1/clients/no-such-client", role="bot"),  # 404
        webhook(stack, "no-such-webhook-secret-000", "h1"),  # the webhook's 404
        api(stack, "GET", "/v1/no-such-route"),  # API Gateway's own 404 (GatewayResponses)
    ]
    assert [a.status_code for a in answers] == [200, 401, 200, 201, 400, 404, 404, 404]
    for answer in answers:
        assert {name: answer.headers.get(name) for name in SECURITY_HEADERS} == SECURITY_HEADERS, answer.request.url


def test_a_number_out_of_range_is_a_400_and_nothing_is_written(stack: dict[str, Any]) -> None:
    secret = "never-stored-secret-0123456789"
    changed = put_settings(stack, secret=secret, allowed_country_codes=[int("9" * 60)])
    assert changed.status_code == 400, changed.text
    assert changed.json()["details"][0]["field"].startswith("allowed_country_codes")
    # the secret in the same request was not taken either: its webhook URL is unknown
    assert webhook(stack, secret, "n1").status_code == 404


# -- secrets: no oracle, long enough, grace as asked -----------------------------------------------------------------
def test_a_secret_of_another_project_is_refused_without_naming_it(stack: dict[str, Any], target: Any) -> None:
    cli_admin.create_project(
        target,
        project_id="other",
        name="Other",
        server_url="https://pbx.other.example/start.php",
        secret=OTHER_SECRET,
        messengers=[],
    )
    taken = put_settings(stack, secret=OTHER_SECRET)
    assert taken.status_code == 409, taken.text
    assert "another project" not in taken.text and "other" not in taken.json()["message"].replace("another", "")


def test_a_short_secret_in_the_webhook_url_is_refused_with_the_length_needed(stack: dict[str, Any]) -> None:
    short = put_settings(stack, secret="abcdefgh12345")
    assert short.status_code == 400, short.text
    assert short.json()["details"][0]["field"] == "secret"
    assert "17" in short.json()["message"]


def test_a_rotation_with_grace_zero_cuts_every_earlier_secret_at_once(stack: dict[str, Any]) -> None:
    first, second, third = (f"grace-test-secret-{n}-0123456789" for n in range(3))
    assert put_settings(stack, secret=first).status_code == 200
    assert put_settings(stack, secret=second, grace_hours=24).status_code == 200
    assert webhook(stack, first, "g1").status_code == 200  # within its grace period
    cut = put_settings(stack, secret=third, grace_hours=0)
    assert cut.status_code == 200, cut.text
    assert [webhook(stack, s, f"g2{s[-1]}").status_code for s in (first, second, third)] == [404, 404, 200]


@pytest.mark.parametrize("hours", [-1, 73])
def test_a_grace_period_outside_0_to_72_hours_is_a_400(stack: dict[str, Any], hours: int) -> None:
    answer = put_settings(stack, secret="grace-range-secret-0123456789", grace_hours=hours)
    assert answer.status_code == 400, answer.text
    assert answer.json()["details"][0]["field"] == "grace_hours"


# -- the toll-fraud guard and the card call ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    "widening",
    [{"allowed_number_types": ["fixed_line", "mobile", "premium_rate"]}, {"allowed_country_codes": [375]}],
)
def test_a_tenant_admin_cannot_widen_the_toll_fraud_guard(stack: dict[str, Any], widening: dict[str, Any]) -> None:
    answer = put_settings(stack, **widening)
    assert answer.status_code == 403, answer.text
    assert "iptel" in answer.json()["message"]  # who can: the deployment's operator


def test_a_tenant_admin_may_narrow_the_toll_fraud_guard(stack: dict[str, Any]) -> None:
    narrowed = put_settings(stack, allowed_number_types=["mobile"])
    assert narrowed.status_code == 200, narrowed.text
    assert put_settings(stack, allowed_number_types=["fixed_line", "mobile"]).status_code == 200


def test_a_card_call_dials_only_one_of_the_clients_phones(stack: dict[str, Any], target: Any) -> None:
    client = cli_admin.add_client(
        target, project_id=stack["project_id"], channel="telephony", phone="79004443300", variables={}
    )
    path = f"/v1/clients/{client.id}/call"
    other = api(stack, "POST", path, role="bot", json={"employee_id": "zoiper", "phone": "79005556677"})
    assert other.status_code == 403, other.text
    assert other.json()["error"] == "phone_not_of_client"
    own = api(stack, "POST", path, role="bot", json={"employee_id": "zoiper", "phone": "+7 900 444-33-00"})
    assert own.status_code == 200, own.text


# -- logs -------------------------------------------------------------------------------------------------------------
def test_the_gateway_logs_the_route_not_the_webhook_secret(stack: dict[str, Any]) -> None:
    secret = "logged-nowhere-secret-0123456789"
    webhook(stack, secret, "l1")
    log = stack["_local"].log
    assert "/iptelefon_webhook/{secret}" in log
    assert secret not in log
