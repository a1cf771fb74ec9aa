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
