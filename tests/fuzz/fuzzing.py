"""What the fuzz tests share: how many examples, what every answer must look like, and the webhook ledger.

FUZZ_EXAMPLES (default 25) is Hypothesis' `max_examples` for each fuzz test; `make test` runs that bounded fuzz,
`make fuzz` a long one (FUZZ_EXAMPLES=200, at least 10,000 requests in all).
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from typing import Any

import boto3
from hypothesis import HealthCheck, Phase, settings

from devstack.run import DEMO_SECRET
from iptelefon.data.call_records import call_sk
from iptelefon.data.gateway import project_pk

FUZZ_EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES") or 25)
# `make test` (and CI) replays the same generated requests every run, so a red run is reproducible; `make fuzz`
# explores new ones each time (FUZZ_RANDOM=1).
FUZZ_RANDOM = os.environ.get("FUZZ_RANDOM") == "1"
WEBHOOK_PATH = "/iptelefon_webhook/"
# The same body for every unknown secret (contract section 2).
UNKNOWN_SECRET_BODY = {"error": "not_found", "message": "unknown webhook secret"}


def fuzz_settings(max_examples: int = FUZZ_EXAMPLES) -> settings:
    """Hypothesis settings for requests to a live stack: no deadline (the gateway is slow now and then), no example
    database (a replayed example would be a request the ledger does not expect), shrinking kept for a small repro."""
    return settings(
        max_examples=max_examples,
        deadline=None,
        database=None,
        phases=[Phase.generate, Phase.shrink],
        suppress_health_check=[
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.filter_too_much,
            HealthCheck.large_base_example,
        ],
        report_multiple_bugs=False,
        derandomize=not FUZZ_RANDOM,
    )


@dataclass(frozen=True)
class Answer:
    """An HTTP answer as the checks need it, from httpx or from schemathesis (requests)."""

    status: int
    content_type: str
    body: bytes
    request: str  # method, URL and a prefix of the body: for the failure message

    def json(self) -> Any:
        return json.loads(self.body)

    def __str__(self) -> str:
        return f"{self.request}\n  -> {self.status} {self.content_type} {self.body[:300]!r}"


def describe_request(method: str, url: str, headers: Any, body: bytes | str | None) -> str:
    shown = body if isinstance(body, (bytes, type(None))) else body.encode("utf-8", "replace")
    content_type = headers.get("Content-Type") if headers else None
    auth = headers.get("Authorization") if headers else None
    shown = shown or b""
    return (
        f"{method} {url[:300]} content-type={content_type!r} authorization={auth!r} "
        f"body ({len(shown)} bytes)={shown[:300]!r}"
    )


def check_answer(answer: Answer) -> Any:
    """Every answer of the service: never a 5xx, always a JSON object, 4xx with `error` and `message`. Its body."""
    assert answer.status < 500, f"server error:\n{answer}"
    assert answer.content_type.split(";")[0].strip() == "application/json", f"not JSON:\n{answer}"
    try:
        body = answer.json()
    except ValueError:
        raise AssertionError(f"the body is not JSON:\n{answer}") from None
    assert isinstance(body, dict), f"the body is not a JSON object:\n{answer}"
    if answer.status >= 400:
        assert isinstance(body.get("error"), str) and body["error"], f"no `error` code:\n{answer}"
        assert isinstance(body.get("message"), str) and body["message"], f"no `message`:\n{answer}"
    return body


def is_route_miss(answer: Answer) -> bool:
    """The gateway's 404 for a path no route of template.yaml matches (e.g. an empty path parameter)."""
    if answer.status != 404:
        return False
    body = answer.json()
    return body.get("error") == "not_found" and str(body.get("message", "")).startswith("no route for ")


def is_demo_webhook(path: str) -> bool:
    return path == WEBHOOK_PATH + DEMO_SECRET


@dataclass
class WebhookLedger:
    """What every request to the demo project's webhook (its known secret) must have left in the table.

    Each such request is answered 200 (a new call: one new `CALL#<call id>` item; a duplicate or a live event: none;
    queued while storage was slow: at most one, applied by the inbox later) or 4xx (one new `REJECTED#...` item with
    the raw request: nothing a PBX sent is lost). `verify()` compares with the table.
    """

    dynamodb: Any
    table: str
    pk: str
    base_calls: int = 0
    base_rejected: int = 0
    new_call_keys: list[str] = field(default_factory=list)
    rejected: int = 0
    duplicates: int = 0
    queued: int = 0
    live_events: int = 0  # ZEON's `cmd=event`: a live state, no call item

    @classmethod
    def open(cls, stack: dict[str, Any]) -> WebhookLedger:
        dynamodb = boto3.client(
            "dynamodb",
            endpoint_url=stack["aws_endpoint_url"],
            region_name=stack.get("region", "us-east-1"),
            aws_access_key_id="local",
            aws_secret_access_key="local",
        )
        ledger = cls(dynamodb, stack["table_name"], project_pk(stack["project_id"]))
        ledger.base_calls = ledger.count(call_sk(""))
        ledger.base_rejected = ledger.count("REJECTED#")
        return ledger

    def record(self, answer: Answer) -> None:
        """Account for one answer of the demo webhook (call after `check_answer`)."""
        body = answer.json()
        if answer.status == 200 and body.get("queued") is True:
            assert body.get("result") == 1, f"bad 200 body:\n{answer}"
            self.queued += 1
        elif answer.status == 200 and "live" in body:
            assert body.get("live") in ("ringing", "answered", "ended"), f"bad 200 body:\n{answer}"
            assert isinstance(body.get("changed"), bool) and "duplicate" not in body, f"bad 200 body:\n{answer}"
            self.live_events += 1
        elif answer.status == 200:
            assert body.get("result") == 1 and isinstance(body.get("duplicate"), bool), f"bad 200 body:\n{answer}"
            assert isinstance(body.get("call_key"), str) and isinstance(body.get("client_id"), str), str(answer)
            if body["duplicate"]:
                self.duplicates += 1
            else:
                assert body["call_key"] not in self.new_call_keys, f"call recorded twice:\n{answer}"
                self.new_call_keys.append(body["call_key"])
        else:
            assert 400 <= answer.status < 500 and answer.status != 404, f"known secret refused:\n{answer}"
            self.rejected += 1

    def count(self, prefix: str) -> int:
        return sum(page["Count"] for page in self._pages(prefix, Select="COUNT"))

    def keys(self, prefix: str) -> set[str]:
        return {item["sk"]["S"] for page in self._pages(prefix, ProjectionExpression="sk") for item in page["Items"]}

    def newest(self, prefix: str) -> dict[str, Any] | None:
        """The item of this prefix with the greatest sort key (REJECTED#<time>#...: the last one kept)."""
        (page,) = self._pages(prefix, Limit=1, ScanIndexForward=False, single=True)
        return page["Items"][0] if page["Items"] else None

    def get(self, sk: str) -> dict[str, Any] | None:
        reply = self.dynamodb.get_item(TableName=self.table, Key={"pk": {"S": self.pk}, "sk": {"S": sk}})
        return reply.get("Item")

    def _pages(self, prefix: str, *, single: bool = False, **extra: Any) -> list[dict[str, Any]]:
        args: dict[str, Any] = {
            "TableName": self.table,
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :prefix)",
            "ExpressionAttributeValues": {":pk": {"S": self.pk}, ":prefix": {"S": prefix}},
            "ConsistentRead": True,
            **extra,
        }
        pages = []
        while True:
            pages.append(self.dynamodb.query(**args))
            if single or "LastEvaluatedKey" not in pages[-1]:
                return pages
            args["ExclusiveStartKey"] = pages[-1]["LastEvaluatedKey"]

    def verify(self, inbox_wait_seconds: float = 120.0) -> None:
        """Every request left its record: new rejected == 4xx answers, new calls == non-duplicate 200 answers plus
        at most one per queued answer (the inbox applies those within its visibility timeout: waited for here)."""
        rejected = self.count("REJECTED#") - self.base_rejected
        assert rejected == self.rejected, f"{self.rejected} webhooks were refused, {rejected} raw requests were kept"
        answered = len(self.new_call_keys)
        deadline = time.monotonic() + (inbox_wait_seconds if self.queued else 0)
        while True:
            call_keys = self.keys(call_sk(""))
            stored = len(call_keys) - self.base_calls
            if stored >= answered + self.queued or time.monotonic() >= deadline:
                break
            time.sleep(1)
        assert answered <= stored <= answered + self.queued, (
            f"{answered} new calls were answered and {self.queued} queued, {stored} were stored"
        )
        missing = [c for c in self.new_call_keys if f"CALL#{c}" not in call_keys]
        assert not missing, f"answered as recorded but not stored: {missing[:10]}"
