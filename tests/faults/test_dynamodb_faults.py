"""devstack.dynamodb_faults (the DynamoDB fault proxy) in front of a real moto server."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import httpx
import pytest
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from moto.server import ThreadedMotoServer

from devstack.dynamodb_faults import FaultProxy
from devstack.run import free_port
from devstack.template import ROOT

# Two attempts and short timeouts: a dropped request fails in about a second, not botocore's default minute.
CLIENT_CONFIG = Config(retries={"mode": "standard", "total_max_attempts": 2}, connect_timeout=1, read_timeout=2)
CONFLICT_MESSAGE = "Transaction cancelled, please refer cancellation reasons for specific reasons [{}]"


def _dynamodb(endpoint_url: str) -> Any:
    return boto3.client(
        "dynamodb",
        endpoint_url=endpoint_url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=CLIENT_CONFIG,
    )


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=free_port(), verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture(scope="module")
def table(moto_url: str) -> Iterator[str]:
    """A small table created straight in moto (the server shares moto's backends with the session: dropped after)."""
    name = f"faults-{uuid.uuid4().hex[:8]}"
    direct = _dynamodb(moto_url)
    direct.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    yield name
    direct.delete_table(TableName=name)


@pytest.fixture
def proxy(moto_url: str) -> Iterator[FaultProxy]:
    with FaultProxy(moto_url, seed=7) as running:
        yield running


@pytest.fixture
def via_proxy(proxy: FaultProxy) -> Any:
    return _dynamodb(proxy.url)


@pytest.fixture
def direct(moto_url: str) -> Any:
    return _dynamodb(moto_url)


@pytest.fixture
def control(proxy: FaultProxy) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=f"{proxy.url}/_control", trust_env=False, timeout=5) as http:
        yield http


def _key() -> str:
    return f"item-{uuid.uuid4().hex}"


def _puts(table: str, *keys: str) -> list[dict[str, Any]]:
    return [
        {"Put": {"TableName": table, "Item": {"pk": {"S": key}}, "ConditionExpression": "attribute_not_exists(pk)"}}
        for key in keys
    ]


# -- pass-through --------------------------------------------------------------------------------------------------


def test_put_and_get_pass_through_unchanged(table: str, via_proxy: Any, direct: Any) -> None:
    # Given no fault
    key = _key()

    # When an item is written and read back through the proxy
    via_proxy.put_item(TableName=table, Item={"pk": {"S": key}, "n": {"N": "42"}})
    read = via_proxy.get_item(TableName=table, Key={"pk": {"S": key}}, ConsistentRead=True)

    # Then the proxy answered as moto does, and the item is in moto
    assert read["Item"] == {"pk": {"S": key}, "n": {"N": "42"}}
    assert direct.get_item(TableName=table, Key={"pk": {"S": key}})["Item"] == read["Item"]


def test_a_transaction_passes_through_and_writes(table: str, via_proxy: Any, direct: Any, proxy: FaultProxy) -> None:
    # Given no fault
    first, second = _key(), _key()

    # When a two-item transaction goes through the proxy
    via_proxy.transact_write_items(TransactItems=_puts(table, first, second))

    # Then both items are in moto and no fault was injected
    for key in (first, second):
        assert "Item" in direct.get_item(TableName=table, Key={"pk": {"S": key}})
    assert proxy.state["injected"] == {"conflicts": 0, "refused": 0}


# -- conflicts -----------------------------------------------------------------------------------------------------


def test_conflict_rate_one_cancels_a_transaction_as_dynamodb_does(
    table: str, via_proxy: Any, control: httpx.Client
) -> None:
    # Given every transaction conflicts
    control.post("/faults", json={"conflict_rate": 1})

    # When a three-item transaction is sent
    with pytest.raises(ClientError) as caught:
        via_proxy.transact_write_items(TransactItems=_puts(table, _key(), _key(), _key()))

    # Then botocore parses DynamoDB's cancellation: one reason per item, exactly one of them a TransactionConflict
    response = caught.value.response
    reasons = response["CancellationReasons"]
    codes = [reason["Code"] for reason in reasons]
    assert response["Error"]["Code"] == "TransactionCanceledException"
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert len(reasons) == 3
    assert codes.count("TransactionConflict") == 1
    assert {"Code": "TransactionConflict", "Message": "Transaction is ongoing for the item"} in reasons
    assert response["Error"]["Message"] == CONFLICT_MESSAGE.format(", ".join(codes))


def test_a_cancelled_transaction_writes_nothing_upstream(
    table: str, via_proxy: Any, direct: Any, proxy: FaultProxy, control: httpx.Client
) -> None:
    # Given every transaction conflicts
    control.post("/faults", json={"conflict_rate": 1})
    first, second = _key(), _key()

    # When a transaction is sent (and cancelled)
    with pytest.raises(ClientError):
        via_proxy.transact_write_items(TransactItems=_puts(table, first, second))

    # Then moto never saw it, and the conflict was counted once (botocore does not retry a cancellation)
    for key in (first, second):
        assert "Item" not in direct.get_item(TableName=table, Key={"pk": {"S": key}})
    assert proxy.state["injected"] == {"conflicts": 1, "refused": 0}


def test_conflict_rate_one_leaves_non_transaction_calls_alone(
    table: str, via_proxy: Any, proxy: FaultProxy, control: httpx.Client
) -> None:
    # Given every transaction conflicts
    control.post("/faults", json={"conflict_rate": 1})
    key = _key()

    # When plain item calls are made
    via_proxy.put_item(TableName=table, Item={"pk": {"S": key}})
    read = via_proxy.get_item(TableName=table, Key={"pk": {"S": key}})
    found = via_proxy.query(
        TableName=table, KeyConditionExpression="pk = :pk", ExpressionAttributeValues={":pk": {"S": key}}
    )

    # Then they all succeed and no conflict was injected
    assert read["Item"] == {"pk": {"S": key}}
    assert found["Count"] == 1
    assert proxy.state["injected"]["conflicts"] == 0


# -- DynamoDB down -------------------------------------------------------------------------------------------------


def test_down_drops_every_request_with_a_connection_error(
    table: str, via_proxy: Any, proxy: FaultProxy, control: httpx.Client
) -> None:
    # Given DynamoDB is down
    control.post("/faults", json={"dynamodb": "down"})

    # When a call is made
    with pytest.raises(BotoCoreError) as caught:
        via_proxy.get_item(TableName=table, Key={"pk": {"S": _key()}})

    # Then botocore saw a dropped connection (not an HTTP answer), on each of its two attempts
    assert not isinstance(caught.value, ClientError)
    assert proxy.state["injected"] == {"conflicts": 0, "refused": 2}


def test_up_again_serves_requests(table: str, via_proxy: Any, proxy: FaultProxy, control: httpx.Client) -> None:
    # Given DynamoDB went down and a call failed
    control.post("/faults", json={"dynamodb": "down"})
    with pytest.raises(BotoCoreError):
        via_proxy.get_item(TableName=table, Key={"pk": {"S": _key()}})

    # When it comes up again
    state = control.post("/faults", json={"dynamodb": "up"}).json()
    key = _key()
    via_proxy.put_item(TableName=table, Item={"pk": {"S": key}})

    # Then calls succeed and the refusals stay counted
    assert via_proxy.get_item(TableName=table, Key={"pk": {"S": key}})["Item"] == {"pk": {"S": key}}
    assert state == {"dynamodb": "up", "conflict_rate": 0.0, "injected": {"conflicts": 0, "refused": 2}}
    assert proxy.state["injected"]["refused"] == 2


# -- control API ---------------------------------------------------------------------------------------------------


def test_control_reports_the_initial_state(control: httpx.Client) -> None:
    # Given a fresh proxy
    # When its state is read
    response = control.get("/faults")

    # Then DynamoDB is up with no faults
    assert response.status_code == 200
    assert response.json() == {"dynamodb": "up", "conflict_rate": 0.0, "injected": {"conflicts": 0, "refused": 0}}


def test_control_updates_both_settings_at_once(control: httpx.Client) -> None:
    # Given a fresh proxy
    # When both settings are posted
    response = control.post("/faults", json={"dynamodb": "down", "conflict_rate": 0.25})

    # Then the answer and a later read show the new state
    expected = {"dynamodb": "down", "conflict_rate": 0.25, "injected": {"conflicts": 0, "refused": 0}}
    assert response.status_code == 200
    assert response.json() == expected
    assert control.get("/faults").json() == expected


@pytest.mark.parametrize(
    "body",
    [
        b'{"dynamodb": "sideways"}',
        b'{"conflict_rate": 1.5}',
        b'{"conflict_rate": -0.1}',
        b'{"conflict_rate": "0.5"}',
        b'{"conflict_rate": true}',
        b'{"conflict_rate": NaN}',
        b'{"throttle": 1}',
        b'{"dynamodb": "down", "extra": 1}',
        b"[]",
        b"not json",
    ],
)
def test_control_rejects_bad_input_and_changes_nothing(control: httpx.Client, body: bytes) -> None:
    # Given a fresh proxy
    # When a bad body is posted
    response = control.post("/faults", content=body, headers={"Content-Type": "application/json"})

    # Then it is a 400 with a JSON error, and the state is unchanged
    assert response.status_code == 400
    assert set(response.json()) == {"error", "message"}
    assert control.get("/faults").json()["dynamodb"] == "up"


def test_the_control_api_never_reaches_dynamodb(control: httpx.Client) -> None:
    # Given DynamoDB is down
    control.post("/faults", json={"dynamodb": "down"})

    # When an unknown control route is asked for
    response = control.get("/nothing-here")

    # Then the proxy answers it itself
    assert response.status_code == 404


# -- command line --------------------------------------------------------------------------------------------------


def test_main_serves_until_sigterm_with_the_conflict_rate_from_the_environment(moto_url: str) -> None:
    # Given the proxy started as the local stack starts it, DDB_CONFLICT_RATE set
    env = {**os.environ, "DDB_CONFLICT_RATE": "0.5"}
    command = [sys.executable, "-m", "devstack.dynamodb_faults", "--port", "0", "--upstream", moto_url]
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
    try:
        # When it announces its URL
        assert process.stdout is not None
        line = process.stdout.readline().strip()
        url = line.split(" ")[2]

        # Then it serves that URL with the rate from the environment, and stops on SIGTERM
        assert line == f"dynamodb-faults: serving {url} -> {moto_url}"
        assert httpx.get(f"{url}/_control/faults", trust_env=False).json()["conflict_rate"] == 0.5
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=5) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()
