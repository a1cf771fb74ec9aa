"""A month of calls for the demo project of `make run` (a fresh start): answered, missed and busy calls, callbacks
after most missed ones, and a few missed calls in the last hour nobody has called back yet. They are posted through
the connector's webhook in time order, as the PBX would post them, so the console's "Пропущенные" has a queue and
"Статистика" a chart from the first minute (`make run DEMO_HISTORY=0` starts without them).
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import httpx

MOSCOW = ZoneInfo("Europe/Moscow")  # a webhook's calldate without a zone is Moscow time (contract §2)
EXTENSIONS = ("346", "347", "348")
CLIENTS = tuple(f"7900555{n:04d}" for n in range(1, 41))
DAYS = 30


def history(now: datetime, rng: random.Random) -> list[dict[str, str]]:
    """The calls as form webhooks (`calldate` in Moscow time), oldest first; none later than `now`."""
    local_now = now.astimezone(MOSCOW)
    calls: list[tuple[datetime, dict[str, str]]] = []
    for days_ago in range(DAYS, 0, -1):
        day = (local_now - timedelta(days=days_ago)).replace(hour=0, minute=0, second=0, microsecond=0)
        count = rng.randint(8, 14) if day.isoweekday() <= 5 else rng.randint(1, 4)
        for _ in range(count):
            start = day + timedelta(hours=rng.choice((9, 10, 10, 11, 11, 12, 13, 14, 15, 15, 16, 17, 18, 19)))
            calls.extend(_call_and_callback(start + timedelta(minutes=rng.randint(0, 59)), rng))
    for minutes_ago in (50, 25, 7):  # the queue: missed in the last hour, not called back yet
        start = local_now - timedelta(minutes=minutes_ago)
        client = f"7900666{minutes_ago:04d}"  # new callers: fresh tasks with their SLA clocks running
        calls.append((start, _form(start, client, "IN", "346", rng.choice(("NO ANSWER", "BUSY")))))
    calls.sort(key=lambda call: call[0])
    return [form for start, form in calls if start <= local_now]


def _call_and_callback(start: datetime, rng: random.Random) -> list[tuple[datetime, dict[str, str]]]:
    client, extension = rng.choice(CLIENTS), rng.choice(EXTENSIONS)
    status = rng.choices(("ANSWERED", "NO ANSWER", "BUSY"), weights=(70, 20, 10))[0]
    calls = [(start, _form(start, client, "IN", extension, status, talk=rng.randint(20, 600)))]
    if status != "ANSWERED" and rng.random() < 0.8:  # most are called back: some in minutes, some hours later
        later = start + timedelta(minutes=rng.choice((2, 4, 6, 9, 12, 14, 18, 25, 40, 90, 240)))
        calls.append((later, _form(later, client, "OUT", extension, "ANSWERED", talk=rng.randint(30, 300))))
    return calls


def _form(
    start: datetime, client: str, direction: str, extension: str, status: str, *, talk: int = 0
) -> dict[str, str]:
    return {
        "id": f"demo-{start:%Y%m%d%H%M}-{client[-4:]}-{direction}",
        "calldate": start.strftime("%Y-%m-%d %H:%M:%S"),
        "calltype": direction,
        "client": client,
        "exten": extension,
        "disposition": status,
        "talktime": str(talk if status == "ANSWERED" else 0),
    }


def post_history(webhook_url: str, now: datetime, *, seed: int = 23) -> int:
    """Post the demo's month of calls to the connector's webhook; the number posted."""
    forms = history(now, random.Random(seed))
    with httpx.Client(timeout=10, trust_env=False) as http:
        for form in forms:
            http.post(webhook_url, data=form).raise_for_status()
    return len(forms)
