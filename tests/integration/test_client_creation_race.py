"""50 concurrent webhooks for one new phone create exactly one client (moto server made atomic as DynamoDB is, real
threads)."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3
import pytest
from fixtures.aws import TEST_TEMPLATE
from moto.server import ThreadedMotoServer

from devstack.template import create_tables
from iptelefon.data.client_items import client_sk
from iptelefon.data.clients import ClientStore
from iptelefon.data.gateway import Storage, project_pk
from iptelefon.domain.models import Project
from iptelefon.usecases.webhook import new_client

PHONE = "79004443322"


@pytest.fixture(scope="module")
def moto_server_storage() -> Iterator[Storage]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    try:
        client = boto3.client(
            "dynamodb",
            endpoint_url=f"http://127.0.0.1:{port}",
            region_name="us-east-1",
            config=boto3.session.Config(max_pool_connections=60),
        )
        create_tables(client, TEST_TEMPLATE)
        yield Storage(client, TEST_TEMPLATE.physical_name("MainTable"))
    finally:
        server.stop()


@pytest.mark.parametrize("messengers", [[], ["whatsapp"]])
def test_fifty_concurrent_webhooks_for_a_new_phone_create_one_client(
    moto_server_storage: Storage, atomic_dynamodb: None, messengers: list[Any]
) -> None:
    # Given a project and a phone nobody has seen
    project = Project(id=f"race{len(messengers)}", name="Race", messengers=messengers)
    store = ClientStore(moto_server_storage)
    # When 50 threads match-or-create it at once
    with ThreadPoolExecutor(max_workers=50) as pool:
        results = list(
            pool.map(lambda _: store.match_or_add(project, new_client(project, PHONE, time.time())), range(50))
        )
    # Then every thread got the same client and exactly one was created
    assert len({client_id for client_id, _ in results}) == 1
    assert sum(created for _, created in results) == 1
    items = moto_server_storage.query(project_pk(project.id), client_sk(""))
    assert len(items) == 1
