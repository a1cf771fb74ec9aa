"""Integration: the real handlers on moto in-process (`aws`, from the root conftest); the PBX is a double."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from fixtures.dynamodb_server import dynamodb_server
from fixtures.pbx import fake_pbx
from fixtures.projects import PBX_SECRET, admin_target, lambda_context, other_project, project
from fixtures.webhook_receiver import webhook_receiver

__all__ = [
    "admin_target",
    "dynamodb_server",
    "fake_pbx",
    "lambda_context",
    "other_project",
    "project",
    "webhook_receiver",
]


@pytest.fixture
def simulated_pbx(project: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The real PBX simulator on 127.0.0.1:<free port> as proj-a's PBX; the PBX timeout is cut to 0.3 s.

    It speaks the classic dialect (`{"result": 1, "data"}`, call-employee / call-group): the shapes these tests
    expect."""
    import httpx

    from devstack.pbx_simulator import PbxSimulator
    from iptelefon.adapters.pbx import PbxClient
    from iptelefon.data.pbx_settings import PbxCredentials, put_pbx_credentials, ssm_provider
    from iptelefon.entry import dependencies
    from iptelefon.platform.settings import get_settings

    monkeypatch.setenv("PBX_TIMEOUT_SECONDS", "0.3")
    get_settings.cache_clear()
    simulator = PbxSimulator(PBX_SECRET, dialect="classic", webhook_delay_seconds=60)
    with simulator, httpx.Client(trust_env=False) as http:
        put_pbx_credentials(
            boto3.client("ssm"), get_settings().ssm_prefix, "proj-a", PbxCredentials(simulator.url, PBX_SECRET)
        )
        ssm_provider().clear_cache()
        monkeypatch.setattr(dependencies, "pbx_client", lambda: PbxClient(http))
        yield simulator
    get_settings.cache_clear()
