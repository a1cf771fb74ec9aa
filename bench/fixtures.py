"""In-process AWS (moto) worlds for the benchmarks: the same tables as template.yaml, a seeded project."""

from __future__ import annotations

import os
import random
import statistics
import sys
import time
import urllib.parse
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from unittest import mock

import boto3
from botocore.client import BaseClient
from moto import mock_aws

from devstack.template import Template, create_queues, create_tables

SECRET = "bench-secret-0123456789"
# The PBX is a stub on 127.0.0.1: the local stack's network setting (a deployed stage refuses such an address).
TEMPLATE = Template(parameters={"Stage": "bench", "PbxNetwork": "local"})
# As Lambda lays it out: each function's code directory importable (the layer is installed in the venv).
sys.path[:0] = [str(spec.code_dir) for spec in TEMPLATE.functions().values()]


def aws_environment() -> dict[str, str]:
    return {
        **TEMPLATE.functions()["WebhookFunction"].environment,
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_DEFAULT_REGION": "us-east-1",
        "POWERTOOLS_METRICS_DISABLED": "true",
        "POWERTOOLS_LOG_LEVEL": "WARNING",
    }


@dataclass
class World:
    project_id: str
    handler: Any

    def webhook(self, call_id: str, phone: str) -> dict[str, Any]:
        body = urllib.parse.urlencode(
            {
                "id": call_id,
                "calltype": "IN",
                "src": phone,
                "exten": "346",
                "talktime": "00:01:00",
                "link": f"https://pbx.test/{call_id}.mp3",
            }
        )
        event = {
            "resource": "/iptelefon_webhook/{secret}",
            "path": f"/iptelefon_webhook/{SECRET}",
            "httpMethod": "POST",
            "headers": {"Content-Type": "application/x-www-form-urlencoded"},
            "pathParameters": {"secret": SECRET},
            "queryStringParameters": None,
            "body": body,
            "isBase64Encoded": False,
            "requestContext": {"requestId": call_id, "stage": "bench"},
        }
        answer = self.handler(event, None)
        assert answer["statusCode"] == 200, answer
        return answer


@contextmanager
def local_aws() -> Iterator[World]:
    os.environ.pop("AWS_ENDPOINT_URL", None)
    with mock.patch.dict(os.environ, aws_environment()), mock_aws():
        create_tables(boto3.client("dynamodb"), TEMPLATE)
        create_queues(boto3.client("sqs"), TEMPLATE)
        from iptel_admin import admin
        from iptelefon.data.gateway import get_storage
        from iptelefon.platform.settings import get_settings
        from webhook.handler import lambda_handler

        target = admin.Target(storage=get_storage(), ssm=boto3.client("ssm"), ssm_prefix=get_settings().ssm_prefix)
        admin.create_project(
            target,
            name="Bench",
            server_url="https://pbx.test/start.php",
            secret=SECRET,
            messengers=[],
            project_id="bench",
        )
        yield World(project_id="bench", handler=lambda event, _: lambda_handler(event, _LambdaContext()))


class _LambdaContext:
    function_name = "bench"
    memory_limit_in_mb = 256
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:bench"
    aws_request_id = "bench"

    def get_remaining_time_in_millis(self) -> int:
        return 20_000  # a fresh webhook invocation (its Timeout in template.yaml)


@contextmanager
def counting_calls() -> Iterator[Counter[str]]:
    """Count AWS API calls per service made by any botocore client while the block runs."""
    counts: Counter[str] = Counter()
    original = BaseClient._make_api_call

    def counted(self: BaseClient, operation_name: str, api_params: dict[str, Any]) -> Any:
        counts[self.meta.service_model.service_name] += 1
        return original(self, operation_name, api_params)

    with mock.patch.object(BaseClient, "_make_api_call", counted):
        yield counts


@dataclass
class MatchingTimings:
    clients: int
    p50_ms: float
    p99_ms: float
    scan_ms: float


def matching_timings(clients: int, lookups: int = 300) -> MatchingTimings:
    """Index `clients` clients (phone in a variable), then time lookups of random phones and one naive scan."""
    from iptelefon.data.client_items import INDEX_SK, phone_pk
    from iptelefon.data.clients import ClientStore
    from iptelefon.data.gateway import Storage, from_item
    from iptelefon.domain.models import Project
    from iptelefon.domain.phones import phone_of

    with mock.patch.dict(os.environ, aws_environment()), mock_aws():
        dynamodb = boto3.client("dynamodb")
        create_tables(dynamodb, TEMPLATE)
        table = TEMPLATE.physical_name("MainTable")
        storage = Storage(dynamodb, table)
        project = Project(id="scale", name="Scale")
        phones = [f"7900{n:07d}" for n in range(clients)]
        batch: list[dict[str, Any]] = []
        for n, phone in enumerate(phones):
            created = f"2024-01-01T00:00:00.{n:06d}+00:00"
            batch.append(
                {
                    "PutRequest": {
                        "Item": {
                            "pk": {"S": "PROJECT#scale"},
                            "sk": {"S": f"CLIENT#c{n}"},
                            "id": {"S": f"c{n}"},
                            "channel": {"S": "telegram"},
                            "created_at": {"S": created},
                            "variables": {"M": {"phone": {"S": f"+7 900 {phone[4:7]}-{phone[7:9]}-{phone[9:]}"}}},
                        }
                    }
                }
            )
            batch.append(
                {
                    "PutRequest": {
                        "Item": {
                            "pk": {"S": phone_pk("scale", phone)},
                            "sk": {"S": INDEX_SK},
                            "entries": {"SS": [f"2#{created}#c{n}#var:phone"]},
                        }
                    }
                }
            )
            if len(batch) >= 24:
                dynamodb.batch_write_item(RequestItems={table: batch})
                batch = []
        if batch:
            dynamodb.batch_write_item(RequestItems={table: batch})
        store = ClientStore(storage)
        rng = random.Random(7)
        times = []
        for _ in range(lookups):
            phone = rng.choice(phones)
            start = time.perf_counter()
            found = store.match(project.id, phone)
            times.append((time.perf_counter() - start) * 1000)
            assert found, phone
        target = rng.choice(phones)
        start = time.perf_counter()
        naive = [
            item
            for page in dynamodb.get_paginator("scan").paginate(TableName=table)
            for item in map(from_item, page["Items"])
            if item["sk"].startswith("CLIENT#")
            and any(phone_of(v, "RU") == target for v in item.get("variables", {}).values())
        ]
        scan_ms = (time.perf_counter() - start) * 1000
        assert naive
        times.sort()
        return MatchingTimings(clients, statistics.median(times), times[int(len(times) * 0.99) - 1], scan_ms)


@contextmanager
def local_stack(*options: str) -> Iterator[dict[str, Any]]:
    """The real local stack (`make run`) on free ports, as subprocesses, with `devstack.run` options; yields its
    stack.json."""
    import json
    import signal
    import subprocess
    import tempfile
    from pathlib import Path

    from devstack.run import free_ports

    api, moto, pbx, faults, receiver = map(str, free_ports(("api", "moto", "pbx", "faults", "receiver")).values())
    with tempfile.TemporaryDirectory() as state:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "devstack.run",
                "--api-port",
                api,
                "--moto-port",
                moto,
                "--pbx-port",
                pbx,
                "--faults-port",
                faults,
                "--receiver-port",
                receiver,
                "--state-dir",
                state,
                *options,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        stack_file = Path(state) / "stack.json"
        try:
            deadline = time.monotonic() + 60
            while not stack_file.exists():
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the local stack did not start")
                time.sleep(0.2)
            yield json.loads(stack_file.read_text())
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:  # a loaded machine: the figures are taken, not lost to a slow stop
                process.kill()
                process.wait()


def run_scenarios(name: str, scenarios: dict[str, Any], only: str | None, results_file: Any) -> int:
    """Run each scenario (a function returning its figures with `ok`), or `only` one; print each, write them all to
    `results_file` (a Path) and say whether every figure holds. Returns the exit status."""
    import json

    results: dict[str, Any] = {}
    for scenario, run in scenarios.items():
        if only in (None, scenario):
            results[scenario] = run()
            print(f"{scenario}:", json.dumps(results[scenario]), flush=True)
    results_file.write_text(json.dumps(results, indent=2) + "\n")
    failed = [scenario for scenario, result in results.items() if not result["ok"]]
    print(f"{name}: " + ("all figures hold" if not failed else f"FAILED: {', '.join(failed)}"), flush=True)
    return 1 if failed else 0
