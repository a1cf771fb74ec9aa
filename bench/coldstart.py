"""The paired cold-start bench: each function as the build ships it against the floor, alternating, in fresh processes.

Floor: `import boto3; boto3.client("dynamodb")`, then one GetItem. Subject: the function's handler imported from the
build (its code as /var/task, the layer's python/ as /opt/python, both with their bytecode, nothing written: -B), then
invoked once with a real-looking event; AWS and the PBX are answered by a local stub (`bench.aws_stub`). Each round
runs one floor and one subject per function back to back (which goes first alternates), so every ratio compares two
processes of the same moment. Times run from just before the process is started to the child's own perf_counter
stamps (the clock is system-wide): interpreter start-up is in, teardown is out (the child leaves with os._exit).
The child's environment is Lambda's: credentials in variables, the template's variables, no config files.
"""

from __future__ import annotations

import base64
import json
import os
import statistics
import subprocess
import tempfile
import time
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from unittest import mock

import boto3
from moto import mock_aws

from bench.aws_stub import PBX_PATH, StubData, running_stub
from bench.fixtures import TEMPLATE, aws_environment
from devstack.runtime_python import runtime_python
from devstack.template import ROOT, create_tables

RUNTIME = TEMPLATE.doc["Globals"]["Function"]["Runtime"]  # e.g. python3.13
CHILD = (Path(__file__).parent / "lambda_process.py").read_text()
# What the Lambda runtime brings besides the layer: boto3 (pinned as in requirements-dev.txt), with its bytecode.
RUNTIME_DIR = ROOT / ".aws-sam" / f"lambda-runtime-{RUNTIME}"
FUNCTIONS = {
    "webhook": "WebhookFunction",
    "employee_call": "EmployeeCallFunction",
    "group_call": "GroupCallFunction",
    "read_api": "ReadApiFunction",
}
PROJECT_ID = "bench"
SECRET = "bench-secret-0123456789"
PHONE = "79000000000"
REGION = "us-east-1"


@dataclass(frozen=True)
class Sample:
    """One process: seconds from its start to the end of the import and of the first invocation; warm requests."""

    imported: float
    first_request: float
    warm_overhead_ms: float  # median over the warm requests of (request - its AWS and PBX calls)
    warm_calls: int  # AWS and PBX calls of one warm request
    warm_external_ms: float  # median time in those calls


@dataclass(frozen=True)
class Job:
    target: str  # "floor" or the handler
    logical_id: str
    payload: dict[str, Any]


def the_runtimes_python() -> str:
    """The real interpreter of the runtime's version (not a pyenv shim: its start-up would be measured)."""
    found = runtime_python(RUNTIME)
    if not found:
        raise SystemExit(f"{RUNTIME} not found: the bench runs the functions with the runtime's Python version")
    return found


def lambda_runtime() -> Path:
    stamp = RUNTIME_DIR / ".installed"
    if not stamp.exists():
        boto3_pin = next(
            line for line in (ROOT / "requirements-dev.txt").read_text().splitlines() if line.startswith("boto3==")
        )
        subprocess.run(
            [the_runtimes_python(), "-m", "pip", "install", "-q", "--target", str(RUNTIME_DIR), boto3_pin], check=True
        )
        stamp.touch()
    return RUNTIME_DIR


@contextmanager
def seeded_stub() -> Iterator[tuple[str, str]]:
    """The stub, answering a project made by the admin code (against moto): yields (endpoint URL, bot token)."""
    data = StubData()
    with running_stub(data) as url:
        environment = aws_environment()
        with mock.patch.dict(os.environ, environment), mock_aws():
            from iptel_admin import admin
            from iptelefon.data.gateway import Storage

            dynamodb = boto3.client("dynamodb")
            create_tables(dynamodb, TEMPLATE)
            table = TEMPLATE.physical_name("MainTable")
            ssm = boto3.client("ssm")
            prefix = environment["SSM_PREFIX"]
            target = admin.Target(storage=Storage(dynamodb, table), ssm=ssm, ssm_prefix=prefix, pbx_network="local")
            created = admin.create_project(
                target, name="Bench", server_url=url + PBX_PATH, secret=SECRET, messengers=[], project_id=PROJECT_ID
            )
            admin.set_employee(
                target, project_id=PROJECT_ID, employee_id="e1", name="E", method="api", short_number="346"
            )
            admin.add_client(target, project_id=PROJECT_ID, channel="telegram", phone=PHONE, variables={})
            for page in dynamodb.get_paginator("scan").paginate(TableName=table):
                for item in page["Items"]:
                    data.items[(table, item["pk"]["S"], item["sk"]["S"])] = item
            path = f"{prefix}/projects/{PROJECT_ID}"
            found = ssm.get_parameters_by_path(Path=path, Recursive=True, WithDecryption=True)["Parameters"]
            data.parameters[path] = [{"Name": p["Name"], "Type": p["Type"], "Value": p["Value"]} for p in found]
        yield url, created.token


def api_event(method: str, path: str, resource: str, **parts: Any) -> dict[str, Any]:
    """An API Gateway REST proxy event (as the local gateway builds it)."""
    return {
        "resource": resource,
        "path": path,
        "httpMethod": method,
        "headers": parts.get("headers", {}),
        "multiValueHeaders": {k: [v] for k, v in parts.get("headers", {}).items()},
        "queryStringParameters": parts.get("query"),
        "multiValueQueryStringParameters": {k: [v] for k, v in parts["query"].items()} if parts.get("query") else None,
        "pathParameters": parts.get("path_parameters"),
        "stageVariables": None,
        "requestContext": {
            "resourcePath": resource,
            "httpMethod": method,
            "path": f"/bench{path}",
            "stage": "bench",
            "requestId": "bench",
            "accountId": "123456789012",
            "apiId": "bench",
            "protocol": "HTTP/1.1",
            "requestTimeEpoch": int(time.time() * 1000),
            "identity": {"sourceIp": "127.0.0.1", "userAgent": "bench"},
        },
        "body": parts.get("body"),
        "isBase64Encoded": parts.get("base64", False),
    }


def first_events(token: str) -> dict[str, tuple[dict[str, Any], int]]:
    """Per function: the request its first invocation serves, and the status it must answer."""
    bot = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}

    def bot_call(path: str, body: dict[str, str]) -> tuple[dict[str, Any], int]:
        return api_event("POST", path, path, headers=bot, body=json.dumps(body)), 202

    form = urllib.parse.urlencode(
        {"id": "bench-call", "calltype": "IN", "src": PHONE, "exten": "346", "talktime": "00:01:00"}
    )
    return {
        "webhook": (
            api_event(
                "POST",
                f"/iptelefon_webhook/{SECRET}",
                "/iptelefon_webhook/{secret}",
                headers={"Content-Type": "application/x-www-form-urlencoded"},
                path_parameters={"secret": SECRET},
                body=base64.b64encode(form.encode()).decode(),  # a form is a BinaryMediaType
                base64=True,
            ),
            200,
        ),
        "employee_call": bot_call("/v1/calls/employee", {"client_phone": PHONE, "short_employee_phone": "346"}),
        "group_call": bot_call("/v1/calls/group", {"client_phone": PHONE, "group_id": "1"}),
        "read_api": (api_event("GET", "/v1/clients", "/v1/clients", headers=bot, query={"phone": PHONE}), 200),
    }


def lambda_environment(build: Path, logical_id: str, endpoint: str, home: str) -> dict[str, str]:
    spec = TEMPLATE.functions()[logical_id]
    return {
        **spec.environment,
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "LANG": "en_US.UTF-8",
        "TZ": ":UTC",
        "HOME": home,  # empty: no ~/.aws of this machine
        "AWS_CONFIG_FILE": f"{home}/none",
        "AWS_SHARED_CREDENTIALS_FILE": f"{home}/none",
        "AWS_EXECUTION_ENV": f"AWS_Lambda_{RUNTIME}",
        "AWS_LAMBDA_FUNCTION_NAME": logical_id,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256",
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{logical_id}",
        "AWS_LAMBDA_LOG_STREAM_NAME": "bench",
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ACCESS_KEY_ID": "ASIABENCHBENCHBENCH0",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_SESSION_TOKEN": "bench",
        "AWS_ENDPOINT_URL": endpoint,  # the one difference: every AWS call goes to the stub
        "LAMBDA_TASK_ROOT": str(build / logical_id),
        "LAMBDA_RUNTIME_DIR": str(lambda_runtime()),
        "_HANDLER": spec.handler,
        # Lambda's order: the function (/var/task), the layer (/opt/python), the runtime's boto3 (/var/runtime).
        "PYTHONPATH": os.pathsep.join(
            [str(build / logical_id), str(build / "CommonLayer" / "python"), str(lambda_runtime())]
        ),
    }


def run(python: str, job: Job, environment: dict[str, str]) -> Sample:
    started = time.perf_counter()
    answer = subprocess.run(
        [python, "-S", "-B", "-c", CHILD, job.target, json.dumps(job.payload)],
        env=environment,
        cwd=environment["LAMBDA_TASK_ROOT"],
        capture_output=True,
        text=True,
    )
    lines = [line for line in answer.stdout.splitlines() if line.startswith("BENCH ")]
    if answer.returncode != 0 or not lines:
        raise RuntimeError(f"{job.logical_id} {job.target} failed:\n{answer.stderr[-3000:]}\n{answer.stdout[-3000:]}")
    result = json.loads(lines[-1].removeprefix("BENCH "))
    imported = result["imported_at"] - started
    warm = result["warm"]
    return Sample(
        imported=imported,
        first_request=imported + result["first_invocation"],
        warm_overhead_ms=statistics.median((w["total"] - w["external"]) * 1000 for w in warm),
        warm_calls=warm[-1]["calls"],
        warm_external_ms=statistics.median(w["external"] * 1000 for w in warm),
    )


@dataclass(frozen=True)
class Pair:
    floor: Sample
    subject: Sample


def paired_samples(build: Path, rounds: int, warm_requests: int) -> dict[str, list[Pair]]:
    python = the_runtimes_python()
    with seeded_stub() as (endpoint, token), tempfile.TemporaryDirectory() as home:
        events = first_events(token)
        pairs: dict[str, list[Pair]] = {name: [] for name in FUNCTIONS}
        for round_number in range(rounds):
            for name, logical_id in FUNCTIONS.items():
                environment = lambda_environment(build, logical_id, endpoint, home)
                spec = TEMPLATE.functions()[logical_id]
                floor = Job(
                    "floor",
                    logical_id,
                    {
                        "get_item": {
                            "TableName": spec.environment["TABLE_NAME"],
                            "Key": {"pk": {"S": f"PROJECT#{PROJECT_ID}"}, "sk": {"S": "PROJECT"}},
                        },
                        "warm_requests": warm_requests,
                    },
                )
                event, status = events[name]
                subject = Job(
                    spec.handler,
                    logical_id,
                    {
                        "event": event,
                        "expected_status": status,
                        "timeout_seconds": spec.timeout_seconds,
                        "warm_requests": warm_requests,
                    },
                )
                order = (floor, subject) if round_number % 2 == 0 else (subject, floor)
                samples = {job.target: run(python, job, environment) for job in order}
                pairs[name].append(Pair(floor=samples["floor"], subject=samples[spec.handler]))
    return pairs


def spread(values: list[float], digits: int = 2) -> str:
    return f"{min(values):.{digits}f} / {statistics.median(values):.{digits}f} / {max(values):.{digits}f}"


def bench_paired_cold_start(build: Path, rounds: int = 12, warm_requests: int = 30) -> list[dict[str, Any]]:
    pairs = paired_samples(build.resolve(), rounds, warm_requests)
    every_floor = [p.floor for runs in pairs.values() for p in runs]
    rows = [
        {
            "figure": "floor: import boto3 + dynamodb client (fresh process)",
            "value": f"{statistics.median(s.imported for s in every_floor) * 1000:.0f} ms",
            "ratio": 1.0,
            "target": "-",
        },
        {
            "figure": "floor + first GetItem to the stub",
            "value": f"{statistics.median(s.first_request for s in every_floor) * 1000:.0f} ms",
            "ratio": 1.0,
            "target": "-",
        },
        {
            "figure": "floor: warm GetItem to the stub",
            "value": f"{statistics.median(s.warm_external_ms for s in every_floor):.2f} ms",
            "ratio": "-",
            "target": "-",
        },
    ]
    for name, runs in pairs.items():
        imports = [p.subject.imported / p.floor.imported for p in runs]
        firsts = [p.subject.first_request / p.floor.first_request for p in runs]
        overheads = [p.subject.warm_overhead_ms for p in runs]
        calls = runs[-1].subject.warm_calls
        rows += [
            {
                "figure": f"{name}: import, ratio min / median / max",
                "value": f"{statistics.median(p.subject.imported for p in runs) * 1000:.0f} ms",
                "ratio": spread(imports),
                "target": "<= 1.15x",
            },
            {
                "figure": f"{name}: first request, ratio min / median / max",
                "value": f"{statistics.median(p.subject.first_request for p in runs) * 1000:.0f} ms",
                "ratio": spread(firsts),
                "target": "<= 1.3x",
            },
            {
                "figure": f"{name}: warm overhead over its {calls} calls, min / median / max",
                "value": spread(overheads) + " ms",
                "ratio": "-",
                "target": "<= 0.5 ms" if name == "webhook" else "-",
            },
        ]
    return rows
