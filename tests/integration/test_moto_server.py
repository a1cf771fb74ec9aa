"""devstack.moto_server: moto's DynamoDB with atomic item operations and transactions rolled back item by item."""

from __future__ import annotations

import inspect
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from devstack.moto_server import ATOMIC_OPERATIONS, make_dynamodb_atomic

TABLE = f"atomic-{uuid.uuid4().hex[:8]}"


def test_make_dynamodb_atomic_wraps_each_operation_and_undo_restores_the_originals() -> None:
    from moto.dynamodb.models import DynamoDBBackend

    # Given moto's own item operations
    originals = {name: DynamoDBBackend.__dict__[name] for name in ATOMIC_OPERATIONS}

    # When they are made atomic, then undone
    undo = make_dynamodb_atomic()
    wrapped = {name: DynamoDBBackend.__dict__[name] for name in ATOMIC_OPERATIONS}
    undo()

    # Then each was wrapped around its original while on, and is the very original again after
    for name, original in originals.items():
        assert wrapped[name] is not original
        assert inspect.unwrap(wrapped[name]) is original
        assert wrapped[name].__name__ == name
        assert DynamoDBBackend.__dict__[name] is original


def test_undo_gives_moto_its_own_table_query_back() -> None:
    from moto.dynamodb.models import Table

    query, all_items = Table.query, Table.all_items
    undo = make_dynamodb_atomic()
    narrowed = Table.query
    undo()
    assert narrowed is not query and inspect.unwrap(narrowed) is query
    assert (Table.query, Table.all_items) == (query, all_items)


def _create_table(client: Any, name: str = TABLE) -> None:
    """The table (pk/sk, a gsi1 of gsi1pk/gsi1sk), as the service's own."""
    client.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[
            {"AttributeName": name, "AttributeType": "S"} for name in ("pk", "sk", "gsi1pk", "gsi1sk")
        ],
        GlobalSecondaryIndexes=[
            {
                "IndexName": "gsi1",
                "KeySchema": [
                    {"AttributeName": "gsi1pk", "KeyType": "HASH"},
                    {"AttributeName": "gsi1sk", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
        BillingMode="PAY_PER_REQUEST",
    )


@pytest.fixture
def atomic_table() -> Iterator[Any]:
    """An in-process moto table (pk/sk) with the local stack's atomic, item-by-item rolled back transactions.
    Its name is unique: another test may hold moto's backends (an outer mock_aws) across this one."""
    undo = make_dynamodb_atomic()
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        _create_table(client)
        yield client
        client.delete_table(TableName=TABLE)
    undo()


def _item(client: Any, sk: str) -> dict[str, Any] | None:
    return client.get_item(TableName=TABLE, Key={"pk": {"S": "P"}, "sk": {"S": sk}}).get("Item")


def test_a_cancelled_transaction_leaves_every_item_as_it_was(atomic_table: Any) -> None:
    client = atomic_table
    # Given an existing item with a counter, and an item the transaction's condition will find
    client.put_item(TableName=TABLE, Item={"pk": {"S": "P"}, "sk": {"S": "counter"}, "n": {"N": "1"}})
    client.put_item(TableName=TABLE, Item={"pk": {"S": "P"}, "sk": {"S": "taken"}})

    # When one transaction creates an item, updates the counter, deletes nothing and then fails its last condition
    with pytest.raises(ClientError) as failure:
        client.transact_write_items(
            TransactItems=[
                {"Put": {"TableName": TABLE, "Item": {"pk": {"S": "P"}, "sk": {"S": "new"}}}},
                {
                    "Update": {
                        "TableName": TABLE,
                        "Key": {"pk": {"S": "P"}, "sk": {"S": "counter"}},
                        "UpdateExpression": "SET n = n + :one",
                        "ExpressionAttributeValues": {":one": {"N": "1"}},
                    }
                },
                {
                    "Put": {
                        "TableName": TABLE,
                        "Item": {"pk": {"S": "P"}, "sk": {"S": "taken"}},
                        "ConditionExpression": "attribute_not_exists(pk)",
                    }
                },
            ]
        )

    # Then DynamoDB's answer names the failed condition, and the items written before it are undone
    assert failure.value.response["Error"]["Code"] == "TransactionCanceledException"
    assert "ConditionalCheckFailed" in failure.value.response["Error"]["Message"]
    assert _item(client, "new") is None
    assert _item(client, "counter") == {"pk": {"S": "P"}, "sk": {"S": "counter"}, "n": {"N": "1"}}
    assert _item(client, "taken") == {"pk": {"S": "P"}, "sk": {"S": "taken"}}


def test_a_transaction_that_passes_writes_all_its_items(atomic_table: Any) -> None:
    client = atomic_table
    # Given an item to delete
    client.put_item(TableName=TABLE, Item={"pk": {"S": "P"}, "sk": {"S": "old"}})

    # When a transaction puts one item and deletes the other
    client.transact_write_items(
        TransactItems=[
            {"Put": {"TableName": TABLE, "Item": {"pk": {"S": "P"}, "sk": {"S": "new"}, "v": {"S": "x"}}}},
            {"Delete": {"TableName": TABLE, "Key": {"pk": {"S": "P"}, "sk": {"S": "old"}}}},
        ]
    )

    # Then both effects are there
    assert _item(client, "new") == {"pk": {"S": "P"}, "sk": {"S": "new"}, "v": {"S": "x"}}
    assert _item(client, "old") is None


def test_a_transaction_repeated_with_its_client_request_token_succeeds_without_running_again(
    atomic_table: Any,
) -> None:
    client = atomic_table
    create = [
        {
            "Put": {
                "TableName": TABLE,
                "Item": {"pk": {"S": "P"}, "sk": {"S": "once"}},
                "ConditionExpression": "attribute_not_exists(pk)",
            }
        }
    ]
    # Given a transaction that created an item (as a first attempt that landed although its answer was lost)
    client.transact_write_items(TransactItems=create, ClientRequestToken="token-1")
    # When botocore's retry sends it again with the same token, then it succeeds, as DynamoDB answers a repeat
    client.transact_write_items(TransactItems=create, ClientRequestToken="token-1")
    # while the same request under another token runs, and meets the item
    with pytest.raises(ClientError) as again:
        client.transact_write_items(TransactItems=create, ClientRequestToken="token-2")
    assert again.value.response["Error"]["Code"] == "TransactionCanceledException"
    # and the first token with another request is refused as DynamoDB refuses it
    other = [{"Put": {"TableName": TABLE, "Item": {"pk": {"S": "P"}, "sk": {"S": "other"}}}}]
    with pytest.raises(ClientError) as mismatch:
        client.transact_write_items(TransactItems=other, ClientRequestToken="token-1")
    assert mismatch.value.response["Error"]["Code"] == "IdempotentParameterMismatchException"
    assert _item(client, "other") is None


QUERIES: list[dict[str, Any]] = [
    {"KeyConditionExpression": "pk = :p", "ExpressionAttributeValues": {":p": {"S": "P1"}}},
    {"KeyConditionExpression": "pk = :p", "ExpressionAttributeValues": {":p": {"S": "nobody"}}},
    {
        "KeyConditionExpression": "pk = :p AND sk < :s",
        "ExpressionAttributeValues": {":p": {"S": "P2"}, ":s": {"S": "item#05"}},
        "ScanIndexForward": False,
    },
    {"KeyConditionExpression": "pk = :p", "ExpressionAttributeValues": {":p": {"S": "P0"}}, "Limit": 3},
    {"IndexName": "gsi1", "KeyConditionExpression": "gsi1pk = :g", "ExpressionAttributeValues": {":g": {"S": "G1"}}},
    {
        "IndexName": "gsi1",
        "KeyConditionExpression": "gsi1pk = :g AND gsi1sk BETWEEN :a AND :b",
        "ExpressionAttributeValues": {":g": {"S": "G0"}, ":a": {"S": "02"}, ":b": {"S": "07"}},
        "Limit": 2,
    },
    {"IndexName": "gsi1", "KeyConditionExpression": "gsi1pk = :g", "ExpressionAttributeValues": {":g": {"S": "none"}}},
]


def _every_page(client: Any, table: str, query: dict[str, Any]) -> list[list[dict[str, Any]]]:
    pages, start = [], None
    while True:
        page = client.query(TableName=table, **query, **({"ExclusiveStartKey": start} if start else {}))
        pages.append(page["Items"])
        start = page.get("LastEvaluatedKey")
        if not start:
            return pages


def _answers(narrowed: bool) -> list[list[list[dict[str, Any]]]]:
    """The QUERIES' pages over 30 items, in a table of their own (an outer mock_aws may keep moto's backends)."""
    table = f"{TABLE}-{'narrowed' if narrowed else 'plain'}"
    undo = make_dynamodb_atomic() if narrowed else (lambda: None)
    try:
        with mock_aws():
            client = boto3.client("dynamodb", region_name="us-east-1")
            _create_table(client, table)
            try:
                for n in range(30):  # three partitions; two index partitions; every third item not on the index
                    item = {"pk": {"S": f"P{n % 3}"}, "sk": {"S": f"item#{n:02d}"}}
                    if n % 3:
                        item |= {"gsi1pk": {"S": f"G{n % 2}"}, "gsi1sk": {"S": f"{n % 10:02d}"}}
                    client.put_item(TableName=table, Item=item)
                return [_every_page(client, table, query) for query in QUERIES]
            finally:
                client.delete_table(TableName=table)
    finally:
        undo()


def test_a_query_given_only_its_partition_answers_as_moto_does() -> None:
    # Given the same items in moto as it is and in the local stack's moto (queries handed only their candidates)
    # When the same queries run on both (partitions, key conditions, both directions, pages, a GSI, nothing found)
    plain, narrowed = _answers(narrowed=False), _answers(narrowed=True)
    # Then every page of every answer is the same, and the queries did find items
    assert narrowed == plain
    assert [sum(len(page) for page in pages) for pages in plain] == [10, 0, 1, 10, 10, 6, 0]
