"""Issue 23 through the local gateway, the PBX simulator and DynamoDB under 30 % transaction conflicts (as `make run
DDB_CONFLICT_RATE=0.3`): a callback task closed by a later answered call, the client's text at most once a day,
working hours in another time zone, and counters equal to what was sent after concurrent webhooks with replays."""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from support import LocalStackProcess

MOSCOW = ZoneInfo("Europe/Moscow")
HOURS = {"time_zone": "Asia/Vladivostok", "days": [1, 2, 3, 4, 5, 6], "start": "10:00", "end": "19:00"}
SETTINGS = {
    "working_hours": HOURS,
    "callback_sla_minutes": 30,
    "messengers": ["whatsapp"],
    "missed_call_text": "Мы пропустили ваш звонок и перезвоним в течение 30 минут.",
    "missed_call_text_after_hours": "Мы пропустили ваш звонок и перезвоним утром.",
}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    local = LocalStackProcess.start(
        tmp_path_factory.mktemp("stack"), "--webhook-delay", "0.5", "--conflict-rate", "0.3"
    )
    info = local.wait_until_running(timeout=60)
    # The project's settings before its first webhook (a warm webhook Lambda keeps a project for up to 60 s):
    # Vladivostok hours (UTC+10), 10:00-19:00 Monday to Saturday, a 30-minute SLA, a messenger and missed-call texts
    admin = {"Authorization": f"Bearer {info['admin_token']}"}
    changed = httpx.put(info["api_url"] + "/v1/settings", json=SETTINGS, headers=admin, timeout=30)
    assert changed.status_code == 200, changed.text
    yield info
    local.stop(timeout=20)


def api(stack: dict[str, Any], method: str, path: str, role: str = "admin", **kwargs: Any) -> httpx.Response:
    headers = {"Authorization": f"Bearer {stack[f'{role}_token']}"}
    return httpx.request(method, stack["api_url"] + path, headers=headers, timeout=30, **kwargs)


def sim(stack: dict[str, Any], path: str, body: dict[str, Any]) -> dict[str, Any]:
    answer = httpx.post(stack["pbx_control_url"] + path, json=body, timeout=10)
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def open_tasks(stack: dict[str, Any], role: str = "admin") -> list[dict[str, Any]]:
    answer = api(stack, "GET", "/v1/callbacks", role, params={"state": "open"})
    assert answer.status_code == 200, answer.text
    return list(answer.json()["tasks"])


def wait_for(condition: Any, timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.25)
    raise AssertionError("timed out")


def tasks_of(stack: dict[str, Any], phone: str) -> list[dict[str, Any]]:
    return [t for t in open_tasks(stack) if t["client_phone"] == phone]


def test_a_task_is_closed_by_a_later_answered_call(stack: dict[str, Any]) -> None:
    phone = "79001230001"
    # Given a client whose call to 346 nobody answered (the simulator's ZEON webhooks: RINGING, then a history)
    sim(stack, "/incoming", {"phone": phone, "exten": "346", "answer": "no_answer"})
    (task,) = wait_for(lambda: tasks_of(stack, phone))
    assert task["assignee"] == "346"
    assert any(t["task_id"] == task["task_id"] for t in open_tasks(stack, "operator"))  # in 346's own queue
    # When they call again and 347 answers
    sim(stack, "/incoming", {"phone": phone, "exten": "347", "answer": "answered"})
    # Then the task is closed: out of the queue, counted as called back
    wait_for(lambda: not tasks_of(stack, phone))
    # the statistics' days are the project's (Vladivostok: UTC+10), not UTC's
    day = datetime.fromisoformat(task["opened_at"]).astimezone(ZoneInfo(HOURS["time_zone"])).date().isoformat()
    total = api(stack, "GET", "/v1/stats", params={"from": day, "to": day}).json()["total"]
    assert total["called_back"] >= 1 and total["callbacks_opened"] >= 1


def test_the_client_is_texted_at_most_once_a_day(stack: dict[str, Any]) -> None:
    texts = (SETTINGS["missed_call_text"], SETTINGS["missed_call_text_after_hours"])
    phone = "79001230002"
    # When a client (of the messenger project: a WhatsApp client) misses, is called back, and misses again
    sim(stack, "/incoming", {"phone": phone, "exten": "346", "answer": "busy"})
    (first,) = wait_for(lambda: [t for t in tasks_of(stack, phone) if t["message"]])
    assert first["message"] in texts
    sim(stack, "/incoming", {"phone": phone, "exten": "346", "answer": "answered"})
    wait_for(lambda: not tasks_of(stack, phone))
    sim(stack, "/incoming", {"phone": phone, "exten": "346", "answer": "no_answer"})
    (second,) = wait_for(lambda: tasks_of(stack, phone))
    # Then the second task has no text (a day has not passed), and the client's dialog holds the one text
    time.sleep(1)  # a text would follow its task within a moment
    (second,) = tasks_of(stack, phone)
    assert second["task_id"] != first["task_id"] and second["message"] is None
    client = api(stack, "GET", f"/v1/clients/{second['client_id']}").json()
    sent = [note["text"] for note in client["dialog"] if note["kind"] == "missed_call_text"]
    assert sent == [first["message"]]


def test_working_hours_in_another_time_zone(stack: dict[str, Any]) -> None:
    # Given Vladivostok hours (the module's settings), when a client misses at Saturday 2026-11-28 18:50 there
    # (11:50 Moscow: the webhook's calldate zone)
    form = {"id": "vvo-1", "calltype": "IN", "src": "79001230003", "exten": "348", "calldate": "2026-11-28 11:50:00"}
    httpx.post(stack["webhook_url"], data={**form, "disposition": "NO ANSWER"}).raise_for_status()
    # Then it is due Monday 10:20 Vladivostok: 10 working minutes on Saturday, 20 on Monday
    (task,) = tasks_of(stack, "79001230003")
    assert task["due_at"] == "2026-11-30T00:20:00Z"
    # and it is counted on Saturday at 18:00, Vladivostok's day and hour
    report = api(stack, "GET", "/v1/stats", params={"from": "2026-11-28", "to": "2026-11-28"}).json()
    assert report["time_zone"] == "Asia/Vladivostok" and report["heatmap"][5][18] == 1
    assert report["total"]["missed"] == 1


def test_counters_equal_what_was_sent_after_concurrent_webhooks_with_replays(stack: dict[str, Any]) -> None:
    # Given 150 calls on 2026-10-05 (a Monday; 09:00-16:27 Moscow, the same day in Vladivostok) to three extensions
    # from 20 clients, each webhook sent once or up to three times, concurrently, while 30 % of DynamoDB transactions
    # are cancelled as conflicts
    rng = random.Random(2023)
    day = datetime(2026, 10, 5, 9, 0, tzinfo=MOSCOW)
    calls = []
    for i in range(150):
        direction = rng.choice(["IN", "IN", "OUT"])
        status = rng.choice(["ANSWERED", "NO ANSWER", "BUSY"])
        start = day + timedelta(minutes=3 * i)
        calls.append(
            {
                "id": f"load-{i}",
                "calltype": direction,
                "client": f"790012{i % 20:05d}",
                "exten": rng.choice(["346", "347", "348"]),
                "calldate": start.strftime("%Y-%m-%d %H:%M:%S"),
                "disposition": status,
                "talktime": str(rng.randint(1, 200)) if status == "ANSWERED" else "0",
            }
        )
    sent = [call for call in calls for _ in range(rng.choice([1, 1, 2, 3]))]
    rng.shuffle(sent)
    with httpx.Client(timeout=30) as http, ThreadPoolExecutor(max_workers=6) as pool:
        answers = list(pool.map(lambda form: http.post(stack["webhook_url"], data=form), sent))
    assert all(a.status_code == 200 for a in answers), [a.text for a in answers if a.status_code != 200][:3]
    # Then (once the inbox has applied whatever was queued) the day's counters are exactly what was sent, once each
    expected: Counter[str] = Counter()
    per_extension: dict[str, Counter[str]] = {}
    for call in calls:
        answered = call["disposition"] == "ANSWERED"
        counts = Counter(
            {
                "calls_in": call["calltype"] == "IN",
                "calls_out": call["calltype"] == "OUT",
                "answered": call["calltype"] == "IN" and answered,
                "answered_out": call["calltype"] == "OUT" and answered,
                "missed": call["calltype"] == "IN" and not answered,
                "talk_seconds": int(call["talktime"]),
            }
        )
        expected.update(counts)
        per_extension.setdefault(call["exten"], Counter()).update(counts)

    def report() -> dict[str, Any] | None:
        got = api(stack, "GET", "/v1/stats", params={"from": "2026-10-05", "to": "2026-10-05"}).json()
        return got if got["total"]["calls_in"] + got["total"]["calls_out"] == len(calls) else None

    got = wait_for(report, timeout=60)
    assert {k: got["total"][k] for k in expected} == dict(expected)
    for row in got["employees"]:
        assert {k: row[k] for k in expected} == dict(per_extension[row["employee"]]), row["employee"]
    assert datetime.now(UTC) > day  # the counted day is in the past: no call was refused as too far ahead
