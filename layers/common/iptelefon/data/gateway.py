"""The storage gateway: the only code that talks to DynamoDB (key layout: see MainTable in template.yaml).

The repositories (`projects`, `tokens`, `employees`, `clients`, `call_records`, `attempts`) build their items and
writes with the helpers here and send them through `Storage`.

Every read and write goes through `Storage`, and every DynamoDB answer becomes one outcome, here and nowhere else:
- a condition that did not hold (`ConditionalCheckFailedException`, or a transaction cancelled with
  `ConditionalCheckFailed` reasons) → `ConditionFailed`, naming the `label` of each item whose condition failed;
- contention and throttling (a transaction cancelled with `TransactionConflict` / `ThrottlingError` /
  `ProvisionedThroughputExceeded` reasons, `TransactionConflictException`, throttling or a DynamoDB 500 that outlived
  botocore's own retries) → retried here with full-jitter backoff while the invocation has time (see `budget`),
  then `StorageUnavailable` (503 + Retry-After). botocore's standard mode retries none of the cancellations;
- an unreachable endpoint, a closed connection, a timeout → `StorageUnavailable` at once (botocore retried them);
- `ValidationException` or a `ValidationError` reason → `StorageRejected`, logged with DynamoDB's reason: our request
  was wrong (a key too long, an item too big); never mistaken for a condition, never retried.
"""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Literal

import boto3
from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore import xform_name
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from iptelefon.domain.errors import StorageRejected, StorageUnavailable
from iptelefon.platform import budget
from iptelefon.platform.observability import logger
from iptelefon.platform.settings import get_settings

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

# botocore: 2 attempts, each at most 0.5 s to connect and 1.5 s to read, and its backoff (< 1 s) between them.
CLIENT_CONFIG = Config(retries={"mode": "standard", "total_max_attempts": 2}, connect_timeout=0.5, read_timeout=1.5)
# The longest one DynamoDB call can take, botocore's retries included (the webhook reserves it, see `budget`).
WORST_CALL_SECONDS = 2 * (0.5 + 1.5) + 1

# Answers that a moment's wait may cure: retried here (on top of botocore's own attempts).
RETRIED_REASONS = {"TransactionConflict", "ThrottlingError", "ProvisionedThroughputExceeded", "RequestLimitExceeded"}
# A transaction that answered these may still have been written: retried with its ClientRequestToken, DynamoDB answers
# the repeat without running it again (a new token would meet the transaction's own writes as failed conditions).
MAY_HAVE_LANDED = {"InternalServerError", "ServiceUnavailable"}
RETRIED_CODES = {
    "TransactionConflictException",
    "ProvisionedThroughputExceededException",
    "ThrottlingException",
    "RequestLimitExceeded",
    "InternalServerError",
    "ServiceUnavailable",
}
MAX_ATTEMPTS = 6
BACKOFF_BASE_SECONDS = 0.025
BACKOFF_CAP_SECONDS = 0.5

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


class ConditionFailed(Exception):
    """A write's condition did not hold: a fact about the data (the item exists, a link is set), not an outage."""

    def __init__(self, failed: Sequence[str]) -> None:
        super().__init__(f"condition failed: {', '.join(failed) or 'unnamed'}")
        self.failed = frozenset(failed)


@dataclass(frozen=True)
class Write:
    """One item of a transaction, or a single-item write: `action` and its request without the table name.

    `label` says what a failed condition of this item means; `ConditionFailed.failed` names it.
    """

    action: Literal["Put", "Update", "Delete", "ConditionCheck"]
    request: dict[str, Any] = field(hash=False)
    label: str = ""

    @property
    def key(self) -> tuple[str, str]:
        item_key = self.request["Item"] if self.action == "Put" else self.request["Key"]
        return item_key["pk"]["S"], item_key["sk"]["S"]


def put(item: dict[str, Any], *, only_if: str | None = None, label: str = "", **expression: Any) -> Write:
    """A Put of `item` (plain values); `only_if` is its ConditionExpression (`names=`, `values=` as in `update`)."""
    return Write("Put", {"Item": to_item(item), **_condition(only_if, **expression)}, label)


def update(
    pk: str,
    sk: str,
    expression: str,
    *,
    only_if: str | None = None,
    names: dict[str, str] | None = None,
    values: dict[str, Any] | None = None,
    label: str = "",
) -> Write:
    """An Update of one item; `values` are plain Python values (a `set` of str becomes a string set)."""
    request = {"Key": key(pk, sk), "UpdateExpression": expression, **_condition(only_if, names=names, values=values)}
    return Write("Update", request, label)


def condition_check(pk: str, sk: str, only_if: str, *, label: str = "", **expression: Any) -> Write:
    """A transaction item that writes nothing: the transaction happens only if `only_if` holds for the item."""
    return Write("ConditionCheck", {"Key": key(pk, sk), **_condition(only_if, **expression)}, label)


def delete(pk: str, sk: str, *, only_if: str | None = None, label: str = "", **expression: Any) -> Write:
    return Write("Delete", {"Key": key(pk, sk), **_condition(only_if, **expression)}, label)


def _condition(
    only_if: str | None, *, names: dict[str, str] | None = None, values: dict[str, Any] | None = None
) -> dict[str, Any]:
    parts: dict[str, Any] = {}
    if only_if:
        parts["ConditionExpression"] = only_if
    if names:
        parts["ExpressionAttributeNames"] = names
    if values:
        parts["ExpressionAttributeValues"] = {k: _serializer.serialize(v) for k, v in values.items()}
    return parts


def to_item(data: dict[str, Any]) -> dict[str, Any]:
    return {k: _serializer.serialize(v) for k, v in data.items() if v is not None}


def from_item(item: dict[str, Any]) -> dict[str, Any]:
    return {k: _plain_numbers(_deserializer.deserialize(v)) for k, v in item.items()}


def _plain_numbers(value: Any) -> Any:
    """DynamoDB numbers arrive as Decimal; the rest of the code (and JSON) wants int or float."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: _plain_numbers(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain_numbers(v) for v in value]
    return value


def key(pk: str, sk: str) -> dict[str, Any]:
    return {"pk": {"S": pk}, "sk": {"S": sk}}


def project_pk(project_id: str) -> str:
    return f"PROJECT#{project_id}"


class Storage:
    def __init__(self, client: DynamoDBClient, table_name: str, *, sleep: Callable[[float], None] = time.sleep) -> None:
        self.client = client
        self.table = table_name
        self._sleep = sleep

    def transact(self, writes: Sequence[Write]) -> None:
        """All the writes or none. ConditionFailed names every item whose condition failed."""
        items = [{w.action: {"TableName": self.table, **w.request}} for w in writes]
        args = {"TransactItems": items, "ClientRequestToken": uuid.uuid4().hex}
        self._call("TransactWriteItems", args, [w.label for w in writes])

    def write(self, one: Write) -> dict[str, Any]:
        """One Put / Update / Delete with the same rules as a transaction; returns DynamoDB's reply."""
        operation = {"Put": "PutItem", "Update": "UpdateItem", "Delete": "DeleteItem"}[one.action]
        return self._call(operation, {"TableName": self.table, **one.request}, [one.label])

    def get(self, pk: str, sk: str, *, attributes: str | None = None) -> dict[str, Any] | None:
        args: dict[str, Any] = {"TableName": self.table, "Key": key(pk, sk), "ConsistentRead": True}
        if attributes:
            args["ProjectionExpression"] = attributes
        item = self._call("GetItem", args, []).get("Item")
        return from_item(item) if item else None

    def get_all(self, keys: Sequence[tuple[str, str]]) -> list[dict[str, Any] | None]:
        """Several items in one request (TransactGetItems: consistent, authorized as GetItem), None where missing."""
        items = [{"Get": {"TableName": self.table, "Key": key(pk, sk)}} for pk, sk in keys]
        reply = self._call("TransactGetItems", {"TransactItems": items}, [])
        return [from_item(r["Item"]) if r.get("Item") else None for r in reply.get("Responses", [])]

    def query(
        self,
        pk: str,
        sk_prefix: str = "",
        *,
        limit: int | None = None,
        newest_first: bool = False,
        index: str | None = None,
        sk_before: str = "",
    ) -> list[dict[str, Any]]:
        """The items of `pk` (on `index`, its gsi1pk) whose sort key begins with `sk_prefix`, or, given `sk_before`,
        sorts before it (a sparse index of due times: what is due by then)."""
        pk_name, sk_name = ("gsi1pk", "gsi1sk") if index else ("pk", "sk")
        condition, values = f"{pk_name} = :pk", {":pk": {"S": pk}}
        if sk_prefix:  # DynamoDB refuses begins_with on an empty string
            condition, values[":prefix"] = f"{condition} AND begins_with({sk_name}, :prefix)", {"S": sk_prefix}
        elif sk_before:
            condition, values[":before"] = f"{condition} AND {sk_name} < :before", {"S": sk_before}
        args: dict[str, Any] = {
            "TableName": self.table,
            "KeyConditionExpression": condition,
            "ExpressionAttributeValues": values,
            "ScanIndexForward": not newest_first,
        }
        if index:
            args["IndexName"] = index
        else:
            args["ConsistentRead"] = True
        items: list[dict[str, Any]] = []
        while True:
            if limit is not None:
                args["Limit"] = limit - len(items)
            reply = self._call("Query", args, [])
            items.extend(from_item(i) for i in reply.get("Items", []))
            if "LastEvaluatedKey" not in reply or (limit is not None and len(items) >= limit):
                return items
            args["ExclusiveStartKey"] = reply["LastEvaluatedKey"]

    def query_between(self, pk: str, first_sk: str, last_sk: str) -> tuple[list[dict[str, Any]], int]:
        """Every item of `pk` whose sort key is in [first_sk, last_sk], in order, and how many Query requests it
        took (each page is one read: what the statistics' cost is measured by)."""
        args: dict[str, Any] = {
            "TableName": self.table,
            "KeyConditionExpression": "pk = :pk AND sk BETWEEN :first AND :last",
            "ExpressionAttributeValues": {":pk": {"S": pk}, ":first": {"S": first_sk}, ":last": {"S": last_sk}},
            "ConsistentRead": True,
        }
        items: list[dict[str, Any]] = []
        for requests in range(1, 10_000):
            reply = self._call("Query", args, [])
            items.extend(from_item(i) for i in reply.get("Items", []))
            if "LastEvaluatedKey" not in reply:
                return items, requests
            args["ExclusiveStartKey"] = reply["LastEvaluatedKey"]
        raise StorageUnavailable("too many pages")

    def scan_sort_key(self, sk: str, *, attributes: str | None = None) -> list[dict[str, Any]]:
        """Every item whose sort key is `sk`, read through the whole table: for the admin CLI's rare listings, never
        on a request's path (its cost grows with the table)."""
        args: dict[str, Any] = {
            "TableName": self.table,
            "FilterExpression": "sk = :sk",
            "ExpressionAttributeValues": {":sk": {"S": sk}},
        }
        if attributes:
            args["ProjectionExpression"] = attributes
        items: list[dict[str, Any]] = []
        while True:
            reply = self._call("Scan", args, [])
            items.extend(from_item(i) for i in reply.get("Items", []))
            if "LastEvaluatedKey" not in reply:
                return items
            args["ExclusiveStartKey"] = reply["LastEvaluatedKey"]

    def _call(self, operation: str, args: dict[str, Any], labels: list[str]) -> dict[str, Any]:
        method = getattr(self.client, xform_name(operation))
        for attempt in range(1, MAX_ATTEMPTS + 1):
            if budget.spare_seconds() <= 0:
                raise StorageUnavailable("out of time for storage, retry later")
            try:
                reply: dict[str, Any] = method(**args)
                return reply
            except BotoCoreError as error:  # unreachable, connection closed, timed out: botocore already retried
                raise StorageUnavailable() from error
            except ClientError as error:
                retry = self._outcome(operation, error, labels)
                if "ClientRequestToken" in args and retry not in MAY_HAVE_LANDED:
                    # refused or cancelled: nothing was written, so the next attempt is a new request
                    args = {**args, "ClientRequestToken": uuid.uuid4().hex}
            delay = random.uniform(0, min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * 2**attempt))  # full jitter
            if attempt == MAX_ATTEMPTS or budget.spare_seconds() - delay <= 0:
                logger.warning("storage busy, giving up", extra={"operation": operation, "reason": retry})
                raise StorageUnavailable() from None
            self._sleep(delay)
        raise AssertionError("unreachable")

    @staticmethod
    def _outcome(operation: str, error: ClientError, labels: list[str]) -> str:
        """Raise the outcome of a refused request, or return the reason it is worth retrying."""
        code = str(error.response.get("Error", {}).get("Code"))
        if code == "TransactionCanceledException":
            reasons = error.response.get("CancellationReasons") or []
            codes = [str(r.get("Code", "None")) for r in reasons]
            failed = [labels[i] for i, c in enumerate(codes) if c == "ConditionalCheckFailed" and i < len(labels)]
            if failed:
                raise ConditionFailed(failed) from None
            retried = [c for c in codes if c in RETRIED_REASONS]
            if retried:
                return retried[0]
            messages = [str(r.get("Message", "")) for r in reasons if r.get("Code", "None") != "None"]
            _rejected(operation, codes, messages)
        if code == "ConditionalCheckFailedException":
            raise ConditionFailed(labels) from None
        if code in RETRIED_CODES:
            return code
        if code == "ValidationException":
            _rejected(operation, [code], [str(error.response.get("Error", {}).get("Message", ""))])
        raise error  # AccessDenied, ResourceNotFound: a deployment error, a 500 with its traceback


def _rejected(operation: str, codes: list[str], messages: list[str]) -> None:
    logger.error("storage rejected the request", extra={"operation": operation, "codes": codes, "reasons": messages})
    raise StorageRejected() from None


def dynamodb_client() -> DynamoDBClient:
    return boto3.client("dynamodb", config=CLIENT_CONFIG)


@lru_cache(maxsize=1)
def get_storage() -> Storage:
    return Storage(dynamodb_client(), get_settings().table_name)
