"""`make bench-stats`: what the statistics cost and whether their counters are exact (issue 23).

1. Read cost: a project with 100,000 stored calls over 90 days and 20 extensions (in-process moto, the read path of
   a warm AdminApiFunction). `GET /v1/stats` for the last 30 days, 50 warm requests: p50 / p95 and the DynamoDB
   requests each made (target: <= 300 ms p95, <= 31 reads). The calls are stored as the webhook stores them, with
   the counter rows the webhook's transactions would have added (`domain.call_stats.recount`): the report reads
   only those rows, whatever the number of calls.
2. Exactness: 10,000 webhooks (distinct calls, some sent two or three times, shuffled) through the local stack,
   8 at a time, while 30 % of DynamoDB transactions are cancelled with TransactionConflict (`--conflict-rate 0.3`);
   once the inbox has applied whatever waited there, every counter row equals a recount from the stored calls, and
   the callback counters equal the stored tasks (opened = open + closed, closed = closed).

Prints the figures and writes bench/stats.json. Options: --only read|exact, --calls, --webhooks.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from unittest import mock

import httpx

RESULTS = Path(__file__).resolve().parent / "stats.json"
CALL_FIELDS = ("calls_in", "calls_out", "answered_in", "answered_out", "missed", "talk_seconds")


def _calls(count: int, days: int, extensions: int, rng: random.Random, end: datetime) -> list[Any]:
    from iptelefon.domain.call_record import CallRecord

    calls = []
    for n in range(count):
        start = end - timedelta(seconds=rng.randint(0, days * 86_400))
        status = rng.choices(("answered", "missed", "busy"), weights=(70, 20, 10))[0]
        calls.append(
            CallRecord(
                call_key=f"bench-{n}",
                client_id=f"c{n % 5000}",
                client_phone=f"7900{n % 5000:07d}",
                direction=rng.choice(("in", "in", "out")),
                employee=str(300 + rng.randrange(extensions)),
                started_at=start,
                talk_seconds=rng.randint(5, 600) if status == "answered" else 0,
                status=status,
                received_at=start,
            )
        )
    return calls


@dataclass
class Replay:
    """DynamoDB's recorded answers by (operation, request): what `running_stub` serves."""

    replies: dict[tuple[str, str], dict[str, Any]]

    def answer(self, target: str, request: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        key = (target.partition(".")[2], json.dumps(request, sort_keys=True))
        if key in self.replies:
            return 200, self.replies[key]
        return 400, {"__type": "com.amazon.coral.validate#ValidationException", "message": f"not recorded: {key}"}


@contextmanager
def recording() -> Iterator[dict[tuple[str, str], dict[str, Any]]]:
    """DynamoDB's answers to the requests made in the block, by (operation, request)."""
    from botocore.client import BaseClient

    replies: dict[tuple[str, str], dict[str, Any]] = {}
    original = BaseClient._make_api_call

    def recorded(self: BaseClient, operation: str, params: dict[str, Any]) -> Any:
        reply = original(self, operation, params)
        if self.meta.service_model.service_name == "dynamodb":
            kept = {k: v for k, v in reply.items() if k != "ResponseMetadata"}
            replies[(operation, json.dumps(params, sort_keys=True))] = kept
        return reply

    with mock.patch.object(BaseClient, "_make_api_call", recorded):
        yield replies


def read_cost(calls: int = 100_000, days: int = 90, extensions: int = 20, requests: int = 50) -> dict[str, Any]:
    from bench.aws_stub import running_stub
    from bench.fixtures import _LambdaContext, counting_calls, local_aws

    with local_aws() as world:
        import boto3

        from admin_api.handler import lambda_handler as admin_handler
        from iptelefon.data.call_effects import stats_pk, stats_sk
        from iptelefon.data.call_records import call_sk, client_calls_pk
        from iptelefon.data.gateway import get_storage, project_pk, to_item
        from iptelefon.data.tokens import TokenStore
        from iptelefon.domain.call_stats import recount
        from iptelefon.domain.models import Employee, utc_stamp
        from iptelefon.usecases.auth import issue_token

        storage = get_storage()
        dynamodb = boto3.client("dynamodb")
        table = storage.table
        project = world.project_id
        for n in range(extensions):
            from iptelefon.data.employees import EmployeeStore

            EmployeeStore(storage).put_employee(
                project, Employee(id=f"e{n}", name=f"Сотрудник {n}", call_method="api", short_number=str(300 + n))
            )
        token = issue_token(TokenStore(storage), project, role="admin")[1]
        rng = random.Random(23)
        now = datetime.now(UTC)
        records = _calls(calls, days, extensions, rng, now)
        started = time.perf_counter()
        items = [
            {
                "pk": project_pk(project),
                "sk": call_sk(c.call_key),
                "type": "call",
                **c.model_dump(mode="json"),
                "gsi1pk": client_calls_pk(project, c.client_id),
                "gsi1sk": f"CALL#{utc_stamp(c.started_at or now)}#{c.call_key}",
            }
            for c in records
        ]
        from iptelefon.domain.working_hours import WorkingHours

        rows = recount(records, WorkingHours())
        items += [
            {"pk": stats_pk(project), "sk": stats_sk(day, row), **dict(counts)} for (day, row), counts in rows.items()
        ]
        for i in range(0, len(items), 25):
            batch = [{"PutRequest": {"Item": to_item(item)}} for item in items[i : i + 25]]
            dynamodb.batch_write_item(RequestItems={table: batch})
        stored_seconds = time.perf_counter() - started
        last = now.astimezone(WorkingHours().tz).date()
        first = last - timedelta(days=29)
        event = {
            "resource": "/v1/stats",
            "path": "/v1/stats",
            "httpMethod": "GET",
            "headers": {"Authorization": f"Bearer {token}"},
            "multiValueHeaders": {"Authorization": [f"Bearer {token}"]},
            "queryStringParameters": {"from": first.isoformat(), "to": last.isoformat()},
            "multiValueQueryStringParameters": {"from": [first.isoformat()], "to": [last.isoformat()]},
            "pathParameters": None,
            "body": None,
            "isBase64Encoded": False,
            "requestContext": {"requestId": "bench", "stage": "bench", "path": "/bench/v1/stats"},
        }
        for _ in range(3):  # warm: the token's project cached, imports done
            answer = admin_handler(event, _LambdaContext())
            assert answer["statusCode"] == 200, answer
        # On moto each request costs what moto spends building its answers (seconds for a few hundred items), not
        # what DynamoDB does: its answers are recorded once and served again, as fast as a socket allows, by a stub
        # server on this machine; the time measured is then this service's own (HTTP, botocore, the report).
        moto_timings = []
        for _ in range(3):
            began = time.perf_counter()
            with recording() as replies, counting_calls() as reads:
                answer = admin_handler(event, _LambdaContext())
            moto_timings.append((time.perf_counter() - began) * 1000)
        with running_stub(Replay(replies)) as url, mock.patch.dict("os.environ", {"AWS_ENDPOINT_URL_DYNAMODB": url}):
            get_storage.cache_clear()
            timings = []
            for _ in range(requests):
                began = time.perf_counter()
                answer = admin_handler(event, _LambdaContext())
                timings.append((time.perf_counter() - began) * 1000)
                assert answer["statusCode"] == 200, answer
            get_storage.cache_clear()
        body = json.loads(answer["body"])
        in_period = sum(
            1 for c in records if first <= (c.started_at or now).astimezone(WorkingHours().tz).date() <= last
        )
        timings.sort()
        result = {
            "calls_stored": calls,
            "counter_rows_stored": len(rows),
            "period_days": 30,
            "calls_in_period": in_period,
            "calls_in_report": body["total"]["calls_in"] + body["total"]["calls_out"],
            "p50_ms": round(statistics.median(timings), 1),
            "p95_ms": round(timings[int(len(timings) * 0.95) - 1], 1),
            "moto_p50_ms": round(statistics.median(moto_timings), 1),
            "dynamodb_requests": dict(reads),
            "dynamodb_reads": sum(reads.values()),
            "x_storage_reads": int(answer["multiValueHeaders"]["X-Storage-Reads"][0]),
            "seconds_to_store": round(stored_seconds, 1),
        }
    result["ok"] = (
        result["p95_ms"] <= 300
        and result["dynamodb_reads"] <= 31
        and result["calls_in_report"] == result["calls_in_period"]
    )
    return result


def exact(webhooks: int = 10_000, conflict_rate: float = 0.3, workers: int = 8) -> dict[str, Any]:
    from bench.fixtures import local_stack
    from bench.resilience import faults, project_items, waiting
    from iptelefon.data.gateway import from_item
    from iptelefon.domain.call_record import CallRecord
    from iptelefon.domain.call_stats import recount
    from iptelefon.domain.working_hours import WorkingHours

    rng = random.Random(2023)
    distinct = int(webhooks / 1.25)  # a fifth of the webhooks are replays
    end = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    forms = []
    for n in range(distinct):
        start = (end - timedelta(seconds=rng.randint(0, 20 * 86_400))).astimezone(WorkingHours().tz)
        status = rng.choices(("ANSWERED", "NO ANSWER", "BUSY"), weights=(60, 28, 12))[0]
        forms.append(
            {
                "id": f"exact-{n}",
                "calltype": rng.choice(("IN", "IN", "OUT")),
                "client": f"790077{rng.randrange(400):05d}",  # 400 clients: tasks open, grow and close
                "exten": rng.choice(("346", "347", "348", "349")),
                "calldate": start.strftime("%Y-%m-%d %H:%M:%S"),
                "disposition": status,
                "talktime": str(rng.randint(5, 300)) if status == "ANSWERED" else "0",
            }
        )
    sent = forms + rng.sample(forms, webhooks - distinct)
    rng.shuffle(sent)
    with local_stack("--conflict-rate", str(conflict_rate)) as stack, httpx.Client(timeout=60) as http:
        started = time.perf_counter()
        with ThreadPoolExecutor(max_workers=workers) as pool:
            statuses = Counter(pool.map(lambda form: http.post(stack["webhook_url"], data=form).status_code, sent))
        seconds = time.perf_counter() - started
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and (
            waiting(stack, stack["inbox_queue_url"]) or len(project_items(stack, "CALL#")) < distinct
        ):
            time.sleep(1)
        calls = [CallRecord.model_validate(from_item(item)) for item in project_items(stack, "CALL#")]
        rows = {
            tuple(item["sk"]["S"].split("#", 1)): from_item(item)
            for item in project_items(stack, "", partition="STATS")
        }
        tasks = Counter(item["sk"]["S"].split("#")[0] for item in project_items(stack, "", partition="CALLBACKS"))
        conflicts = faults(stack)["injected"]["conflicts"]
    expected = recount(calls, WorkingHours())
    mismatched = [
        key
        for key in set(expected) | set(rows)
        if {f: v for f, v in expected.get(key, Counter()).items() if f in CALL_FIELDS or f.startswith("in_h")}
        != {f: v for f, v in rows.get(key, {}).items() if (f in CALL_FIELDS or f.startswith("in_h")) and v}
    ]
    all_rows = [row for (_, name), row in rows.items() if name == "*"]
    opened = sum(int(row.get("cb_opened", 0)) for row in all_rows)
    closed = sum(int(row.get("cb_closed", 0)) for row in all_rows)
    result = {
        "webhooks": webhooks,
        "distinct_calls": distinct,
        "conflict_rate": conflict_rate,
        "conflicts_injected": conflicts,
        "statuses": {str(k): v for k, v in statuses.items()},
        "calls_stored": len(calls),
        "counter_rows": len(rows),
        "rows_not_equal_to_recount": len(mismatched),
        "tasks_opened_counted": opened,
        "tasks_stored": {"open": tasks["OPEN"], "closed": tasks["CLOSED"]},
        "tasks_closed_counted": closed,
        "webhooks_per_second": round(webhooks / seconds, 1),
    }
    result["ok"] = (
        result["calls_stored"] == distinct
        and not mismatched
        and opened == tasks["OPEN"] + tasks["CLOSED"]
        and closed == tasks["CLOSED"]
        and conflicts > 0
    )
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=["read", "exact"])
    parser.add_argument("--calls", type=int, default=100_000, help="calls stored for the read cost")
    parser.add_argument("--webhooks", type=int, default=10_000, help="webhooks sent for the exactness run")
    args = parser.parse_args(argv)
    kept = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    results: dict[str, Any] = {}
    if args.only in (None, "read"):
        results["read"] = read_cost(args.calls)
        print("read:", json.dumps(results["read"], ensure_ascii=False), flush=True)
    if args.only in (None, "exact"):
        results["exact"] = exact(args.webhooks)
        print("exact:", json.dumps(results["exact"]), flush=True)
    # a part run alone (--only) keeps the other part's last figures
    RESULTS.write_text(json.dumps(kept | results, indent=2, ensure_ascii=False) + "\n")
    failed = [name for name, result in results.items() if not result["ok"]]
    print("bench-stats: " + ("all figures hold" if not failed else f"FAILED: {', '.join(failed)}"), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
