"""Shared fixtures: one moto session for the whole run (tables built from template.yaml), wiped after each test."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from moto import mock_aws

from devstack.template import Template

TEST_TEMPLATE = Template(parameters={"Stage": "test"})
TEST_ENV = {
    **TEST_TEMPLATE.functions()["WebhookFunction"].environment,
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "POWERTOOLS_METRICS_DISABLED": "true",
    "POWERTOOLS_SERVICE_NAME": "iptelefon-connector",
}


def pytest_configure(config: pytest.Config) -> None:
    # Settings are read once, on first use: the environment must be right before any test imports a handler.
    os.environ.pop("AWS_ENDPOINT_URL", None)
    os.environ.pop("AWS_PROFILE", None)
    os.environ.update(TEST_ENV)


@pytest.fixture(scope="session")
def _aws_session() -> Iterator[None]:
    from devstack.template import create_tables

    # Requests to a real moto server on loopback (the race and local-stack tests) pass through the in-process mock.
    with mock_aws(config={"core": {"passthrough": {"urls": [r"^https?://127\.0\.0\.1(:\d+)?/.*"]}}}):
        create_tables(boto3.client("dynamodb"), TEST_TEMPLATE)
        yield


@pytest.fixture
def aws(_aws_session: None) -> Iterator[None]:
    """In-process AWS (moto), empty at the start of every test."""
    yield
    _wipe()


def _wipe() -> None:
    from aws_lambda_powertools.utilities import parameters

    dynamodb = boto3.client("dynamodb")
    for definition in TEST_TEMPLATE.table_definitions():
        names = [k["AttributeName"] for k in definition["KeySchema"]]
        for page in dynamodb.get_paginator("scan").paginate(TableName=definition["TableName"]):
            for item in page["Items"]:
                dynamodb.delete_item(TableName=definition["TableName"], Key={n: item[n] for n in names})
    ssm = boto3.client("ssm")
    names = [p["Name"] for p in ssm.describe_parameters().get("Parameters", [])]
    for start in range(0, len(names), 10):
        ssm.delete_parameters(Names=names[start : start + 10])
    parameters.clear_caches()
    from iptelefon.storage import get_storage

    get_storage()._projects.clear()  # the warm-Lambda project cache must not outlive a test


@dataclass
class LambdaContext:
    function_name: str = "test"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:test"
    aws_request_id: str = "req-test"

    def get_remaining_time_in_millis(self) -> int:
        return 10_000


@pytest.fixture
def lambda_context() -> LambdaContext:
    return LambdaContext()


@pytest.fixture
def admin_target(aws: None) -> Any:
    from iptel_admin.admin import Target
    from iptelefon.settings import get_settings
    from iptelefon.storage import get_storage

    return Target(
        storage=get_storage(),
        ssm=boto3.client("ssm"),
        ssm_prefix=get_settings().ssm_prefix,
        api_url="https://api.test/test",
    )


PBX_SECRET = "pbx-secret-" + "a1b2c3d4e5f6"


@pytest.fixture
def project(admin_target: Any) -> Any:
    """A project with an `api` employee 346, an `app` employee and a disabled one; returns admin.CreatedProject."""
    from iptel_admin import admin

    created = admin.create_project(
        admin_target,
        name="Test project",
        server_url="https://pbx.test/b3/api/v2/start.php",
        secret=PBX_SECRET,
        messengers=[],
        project_id="proj-a",
    )
    admin.set_employee(
        admin_target, project_id="proj-a", employee_id="346", name="Operator", method="api", short_number="346"
    )
    admin.set_employee(
        admin_target, project_id="proj-a", employee_id="soft", name="Softphone", method="app", short_number=None
    )
    admin.set_employee(
        admin_target, project_id="proj-a", employee_id="off", name="Off", method="disabled", short_number=None
    )
    return created


@pytest.fixture
def other_project(admin_target: Any) -> Any:
    from iptel_admin import admin

    return admin.create_project(
        admin_target,
        name="Other project",
        server_url="https://pbx-b.test/api/v2/start.php",
        secret="pbx-secret-of-project-b",
        messengers=["whatsapp"],
        project_id="proj-b",
    )


# -- PBX doubles for the call routes (issue 5) -----------------------------------------------------------------------
class FakePbx:
    """An in-memory ZEON PBX behind `httpx.MockTransport`: records every request body, answers `reply`.

    `reply` is an httpx.Response or an exception to raise (e.g. httpx.ReadTimeout); `delay` holds each answer back
    (a slow PBX, for concurrent repeats).
    """

    def __init__(self) -> None:
        import threading

        import httpx

        self.requests: list[Any] = []
        self.reply: Any = httpx.Response(200, json={"result": 1, "data": {"call_id": "pbx-1"}})
        self.delay = 0.0
        self._lock = threading.Lock()
        self.http = httpx.Client(transport=httpx.MockTransport(self._handle))

    def _handle(self, request: Any) -> Any:
        import time

        request.read()
        with self._lock:
            self.requests.append(request)
        if self.delay:
            time.sleep(self.delay)
        if isinstance(self.reply, Exception):
            raise self.reply
        return self.reply

    @property
    def forms(self) -> list[dict[str, str]]:
        """The decoded form of every request (the hash included)."""
        from urllib.parse import parse_qsl

        return [dict(parse_qsl(r.content.decode())) for r in self.requests]


@pytest.fixture
def fake_pbx(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakePbx]:
    """Every PBX request of `iptelefon.calls` goes to a FakePbx (never the network)."""
    from iptelefon import calls
    from iptelefon.pbx import PbxClient

    pbx = FakePbx()
    monkeypatch.setattr(calls, "get_pbx_client", lambda: PbxClient(pbx.http))
    yield pbx
    pbx.http.close()


@pytest.fixture
def simulated_pbx(project: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The real PBX simulator on 127.0.0.1:<free port> as proj-a's PBX; the PBX timeout is cut to 0.3 s."""
    import httpx
    from aws_lambda_powertools.utilities import parameters

    from devstack.pbx_simulator import PbxSimulator
    from iptelefon import calls
    from iptelefon.pbx import PbxClient
    from iptelefon.project_config import PbxCredentials, put_pbx_credentials
    from iptelefon.settings import get_settings

    monkeypatch.setenv("PBX_TIMEOUT_SECONDS", "0.3")
    get_settings.cache_clear()
    with PbxSimulator(PBX_SECRET, webhook_delay_seconds=60) as simulator, httpx.Client(trust_env=False) as http:
        put_pbx_credentials(
            boto3.client("ssm"), get_settings().ssm_prefix, "proj-a", PbxCredentials(simulator.url, PBX_SECRET)
        )
        parameters.clear_caches()
        monkeypatch.setattr(calls, "get_pbx_client", lambda: PbxClient(http))
        yield simulator
    get_settings.cache_clear()


@pytest.fixture
def atomic_dynamodb(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make moto's DynamoDB writes atomic, as DynamoDB's are: moto checks a condition and writes without a lock, so
    concurrent threads could both pass `attribute_not_exists`. One lock around each operation closes that gap."""
    import functools
    import threading

    from moto.dynamodb.models import DynamoDBBackend

    lock = threading.RLock()
    for name in ("put_item", "update_item", "delete_item", "get_item", "query", "transact_write_items"):
        original = getattr(DynamoDBBackend, name)

        def locked(*args: Any, __original: Any = original, **kwargs: Any) -> Any:
            with lock:
                return __original(*args, **kwargs)

        monkeypatch.setattr(DynamoDBBackend, name, functools.wraps(original)(locked))
