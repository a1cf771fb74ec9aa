"""`make resilience`: never lose a call, measured against the real local stack (`make run`'s processes).

1. Contention: 50 concurrent webhooks for one new phone while DynamoDB (the fault proxy) cancels 30 % of the
   transactions with `TransactionConflict`, as DynamoDB does under contention. Expected: 50 x 200, 1 client, 50 calls.
2. Outage: DynamoDB taken away for 60 s (`POST {control_url}/faults {"dynamodb": "down"}`), 500 webhooks sent during
   it, then DynamoDB back. Expected: 500 x 200 queued, then every call applied once from the inbox: 500 calls,
   500 notifications (a doubled effect would show as a second notification), nothing left in the inbox or its
   dead-letter queue.
3. Burst: 100 webhooks at the same moment, each for another call, through the local gateway (its functions run in up
   to 4 execution environments each, as Lambda instances). Expected: 100 x 200, no connection reset, 100 calls.

Prints the figures and writes bench/resilience.json.
Options: --only contention|outage|burst, --outage-seconds, --webhooks.
"""

from __future__ import annotations

import argparse
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import boto3
import httpx

from bench.fixtures import local_stack, run_scenarios

RESULTS = Path(__file__).resolve().parent / "resilience.json"
NEW_PHONE = "79007770000"


def aws(stack: dict[str, Any], service: str) -> Any:
    return boto3.client(
        service,
        endpoint_url=stack["aws_endpoint_url"],
        region_name=stack["region"],
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )


def project_items(stack: dict[str, Any], prefix: str, *, partition: str = "PROJECT") -> list[dict[str, Any]]:
    """Items of the demo project's `<partition>#<project>` whose sort key starts with `prefix` (empty: all), read from
    moto directly (not through faults)."""
    condition, values = "pk = :pk", {":pk": {"S": f"{partition}#{stack['project_id']}"}}
    if prefix:  # DynamoDB refuses begins_with on an empty string
        condition, values[":prefix"] = f"{condition} AND begins_with(sk, :prefix)", {"S": prefix}
    pages = (
        aws(stack, "dynamodb")
        .get_paginator("query")
        .paginate(TableName=stack["table_name"], KeyConditionExpression=condition, ExpressionAttributeValues=values)
    )
    return [item for page in pages for item in page["Items"]]


def notifications(stack: dict[str, Any]) -> int:
    pages = (
        aws(stack, "dynamodb")
        .get_paginator("scan")
        .paginate(
            TableName=stack["table_name"],
            FilterExpression="begins_with(pk, :dialog)",
            ExpressionAttributeValues={":dialog": {"S": f"DIALOG#{stack['project_id']}#"}},
        )
    )
    return sum(len(page["Items"]) for page in pages)


def waiting(stack: dict[str, Any], queue_url: str) -> int:
    attributes = aws(stack, "sqs").get_queue_attributes(
        QueueUrl=queue_url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]) + int(attributes["ApproximateNumberOfMessagesNotVisible"])


def faults(stack: dict[str, Any], change: dict[str, Any] | None = None) -> dict[str, Any]:
    url = stack["control_url"] + "/faults"
    answer = httpx.post(url, json=change, timeout=10) if change else httpx.get(url, timeout=10)
    answer.raise_for_status()
    return dict(answer.json())


def contention(webhooks: int = 50, conflict_rate: float = 0.3) -> dict[str, Any]:
    with local_stack("--conflict-rate", str(conflict_rate)) as stack, httpx.Client(timeout=60) as http:

        def post(n: int) -> tuple[int, dict[str, Any]]:
            form = {"id": f"race-{n}", "calltype": "IN", "src": NEW_PHONE, "talktime": "30"}
            answer = http.post(stack["webhook_url"], data=form)
            return answer.status_code, answer.json()

        started = time.perf_counter()
        with ThreadPoolExecutor(max_workers=webhooks) as pool:
            answers = list(pool.map(post, range(webhooks)))
        seconds = time.perf_counter() - started
        # A webhook whose six attempts all met a conflict was queued: the inbox applies it within a moment.
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and (
            waiting(stack, stack["inbox_queue_url"]) or len(project_items(stack, "CALL#")) < webhooks
        ):
            time.sleep(0.5)
        statuses = Counter(status for status, _ in answers)
        clients = {body.get("client_id") for _, body in answers if "client_id" in body}
        result = {
            "webhooks": webhooks,
            "conflict_rate": conflict_rate,
            "statuses": dict(statuses),
            "queued": sum(1 for _, body in answers if body.get("queued")),
            "clients_answered": len(clients),
            "clients_stored": len(project_items(stack, "CLIENT#")),
            "calls_stored": len(project_items(stack, "CALL#")),
            "conflicts_injected": faults(stack)["injected"]["conflicts"],
            "seconds": round(seconds, 2),
        }
    result["ok"] = (
        result["statuses"] == {200: webhooks}
        and result["clients_stored"] == 1
        and result["calls_stored"] == webhooks
        and result["conflicts_injected"] > 0
    )
    return result


def outage(webhooks: int = 500, seconds: float = 60.0, drain_timeout: float = 600.0) -> dict[str, Any]:
    with local_stack() as stack, httpx.Client(timeout=60) as http:
        faults(stack, {"dynamodb": "down"})
        went_down = time.monotonic()
        statuses: Counter[int] = Counter()
        queued = 0
        for n in range(webhooks):  # spread evenly over the outage
            time.sleep(max(0.0, went_down + n * seconds / webhooks - time.monotonic()))
            phone = f"7900888{n % 50:04d}"  # 50 new phones, ten calls each: client creation from the inbox too
            answer = http.post(
                stack["webhook_url"], data={"id": f"outage-{n}", "calltype": "IN", "src": phone, "talktime": "20"}
            )
            statuses[answer.status_code] += 1
            queued += bool(answer.status_code == 200 and answer.json().get("queued"))
        time.sleep(max(0.0, went_down + seconds - time.monotonic()))
        stored_during_outage = len(project_items(stack, "CALL#"))
        refused = faults(stack, {"dynamodb": "up"})["injected"]["refused"]
        came_back = time.monotonic()
        calls = 0
        while time.monotonic() - came_back < drain_timeout:
            calls = len(project_items(stack, "CALL#"))
            if calls >= webhooks and waiting(stack, stack["inbox_queue_url"]) == 0:
                break
            time.sleep(2)
        drained_after = time.monotonic() - came_back
        keys = Counter(item["call_key"]["S"] for item in project_items(stack, "CALL#"))
        result = {
            "webhooks": webhooks,
            "outage_seconds": seconds,
            "statuses": dict(statuses),
            "queued": queued,
            "requests_refused_by_the_outage": refused,
            "calls_stored_during_outage": stored_during_outage,
            "calls_stored": calls,
            "lost": webhooks - len(keys),
            "doubled": sum(count - 1 for count in keys.values()) + max(0, notifications(stack) - len(keys)),
            "clients_stored": len(project_items(stack, "CLIENT#")),
            "inbox_left": waiting(stack, stack["inbox_queue_url"]),
            "dead_letters": waiting(stack, stack["dead_letter_queue_url"]),
            "applied_within_seconds_of_recovery": round(drained_after, 1),
        }
    result["ok"] = (
        result["statuses"] == {200: webhooks}
        and result["lost"] == 0
        and result["doubled"] == 0
        and result["inbox_left"] == 0
        and result["dead_letters"] == 0
    )
    return result


def burst(webhooks: int = 100) -> dict[str, Any]:
    with local_stack() as stack, httpx.Client(timeout=60, limits=httpx.Limits(max_connections=webhooks)) as http:

        def post(n: int) -> int | str:
            form = {"id": f"burst-{n}", "calltype": "IN", "src": f"7900555{n:04d}", "talktime": "10"}
            try:
                return http.post(stack["webhook_url"], data=form).status_code
            except httpx.TransportError as error:  # a reset or refused connection
                return type(error).__name__

        started = time.perf_counter()
        with ThreadPoolExecutor(max_workers=webhooks) as pool:
            answers = Counter(pool.map(post, range(webhooks)))
        seconds = time.perf_counter() - started
        result = {
            "webhooks": webhooks,
            "answers": {str(k): v for k, v in answers.items()},
            "calls_stored": len(project_items(stack, "CALL#")),
            "seconds": round(seconds, 2),
        }
    result["ok"] = answers == {200: webhooks} and result["calls_stored"] == webhooks
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=["contention", "outage", "burst"])
    parser.add_argument("--webhooks", type=int, default=500, help="webhooks sent during the outage")
    parser.add_argument("--outage-seconds", type=float, default=60.0)
    args = parser.parse_args(argv)
    scenarios = {
        "contention": contention,
        "outage": lambda: outage(args.webhooks, args.outage_seconds),
        "burst": burst,
    }
    return run_scenarios("resilience", scenarios, args.only, RESULTS)


if __name__ == "__main__":
    raise SystemExit(main())
