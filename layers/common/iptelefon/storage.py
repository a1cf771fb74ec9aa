"""Data access over the single DynamoDB table (key layout: see MainTable in template.yaml).

SDK failures that a retry may cure (throttling, an unreachable endpoint) become StorageUnavailable (503 +
Retry-After); the SDK itself already retried them in its `standard` mode.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import boto3
from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from iptelefon.errors import Conflict, StorageUnavailable
from iptelefon.models import Employee, Project, TokenRecord
from iptelefon.settings import get_settings

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

_RETRYABLE_CODES = {
    "ProvisionedThroughputExceededException",
    "ThrottlingException",
    "RequestLimitExceeded",
    "InternalServerError",
    "ServiceUnavailable",
}
PROJECT_CACHE_SECONDS = 60
_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


def sha256_hex(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


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


@contextmanager
def sdk_errors() -> Iterator[None]:
    """Turn retryable SDK failures into StorageUnavailable; let everything else through."""
    try:
        yield
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") in _RETRYABLE_CODES:
            raise StorageUnavailable() from error
        raise
    except BotoCoreError as error:  # endpoint unreachable, connection closed, read timeout
        raise StorageUnavailable() from error


def is_condition_failure(error: ClientError) -> bool:
    code = error.response.get("Error", {}).get("Code")
    return code in ("ConditionalCheckFailedException", "TransactionCanceledException")


class Storage:
    def __init__(self, client: DynamoDBClient, table_name: str) -> None:
        self.client = client
        self.table = table_name
        self._projects: dict[str, tuple[float, Project]] = {}

    # -- generic -----------------------------------------------------------------------------------------------
    def get(self, pk: str, sk: str) -> dict[str, Any] | None:
        with sdk_errors():
            reply = self.client.get_item(TableName=self.table, Key=key(pk, sk), ConsistentRead=True)
        item = reply.get("Item")
        return from_item(item) if item else None

    def query(
        self,
        pk: str,
        sk_prefix: str = "",
        *,
        limit: int | None = None,
        newest_first: bool = False,
        index: str | None = None,
    ) -> list[dict[str, Any]]:
        pk_name, sk_name = ("gsi1pk", "gsi1sk") if index else ("pk", "sk")
        condition, values = f"{pk_name} = :pk", {":pk": {"S": pk}}
        if sk_prefix:  # DynamoDB refuses begins_with on an empty string
            condition, values[":prefix"] = f"{condition} AND begins_with({sk_name}, :prefix)", {"S": sk_prefix}
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
            with sdk_errors():
                reply = self.client.query(**args)
            items.extend(from_item(i) for i in reply.get("Items", []))
            if "LastEvaluatedKey" not in reply or (limit is not None and len(items) >= limit):
                return items
            args["ExclusiveStartKey"] = reply["LastEvaluatedKey"]

    # -- projects ----------------------------------------------------------------------------------------------
    def create_project(self, project: Project, webhook_secret: str) -> None:
        """Project item plus its webhook lookup item (by the secret's sha256), both or neither."""
        project_item = {
            "pk": project_pk(project.id),
            "sk": "PROJECT",
            "type": "project",
            **project.model_dump(mode="json"),
        }
        lookup_item = {"pk": f"WEBHOOK#{sha256_hex(webhook_secret)}", "sk": "WEBHOOK", "project_id": project.id}
        try:
            with sdk_errors():
                self.client.transact_write_items(
                    TransactItems=[
                        {
                            "Put": {
                                "TableName": self.table,
                                "Item": to_item(project_item),
                                "ConditionExpression": "attribute_not_exists(pk)",
                            }
                        },
                        {
                            "Put": {
                                "TableName": self.table,
                                "Item": to_item(lookup_item),
                                "ConditionExpression": "attribute_not_exists(pk)",
                            }
                        },
                    ]
                )
        except ClientError as error:
            if is_condition_failure(error):
                raise Conflict(f"project {project.id} exists, or the webhook secret is already in use") from error
            raise

    def update_project(self, project: Project) -> None:
        item = {"pk": project_pk(project.id), "sk": "PROJECT", "type": "project", **project.model_dump(mode="json")}
        with sdk_errors():
            self.client.put_item(TableName=self.table, Item=to_item(item), ConditionExpression="attribute_exists(pk)")

    def get_project(self, project_id: str) -> Project | None:
        item = self.get(project_pk(project_id), "PROJECT")
        return Project.model_validate(item) if item else None

    def get_project_cached(self, project_id: str) -> Project | None:
        """A warm Lambda reads a project at most once a minute (settings change rarely; webhooks come often)."""
        now = time.monotonic()
        cached = self._projects.get(project_id)
        if cached and now - cached[0] < PROJECT_CACHE_SECONDS:
            return cached[1]
        project = self.get_project(project_id)
        if project is not None:
            self._projects[project_id] = (now, project)
        return project

    def find_project_id_by_webhook_secret_hash(self, secret_hash: str) -> str | None:
        item = self.get(f"WEBHOOK#{secret_hash}", "WEBHOOK")
        return str(item["project_id"]) if item else None

    # -- bot tokens (stored only as sha256) --------------------------------------------------------------------
    def put_token(self, token_hash: str, record: TokenRecord) -> None:
        item = {"pk": f"TOKEN#{token_hash}", "sk": "TOKEN", "type": "token", **record.model_dump(mode="json")}
        listing = {
            "pk": project_pk(record.project_id),
            "sk": f"TOKENREF#{record.token_id}",
            "token_hash": token_hash,
            "created_at": record.created_at.isoformat(),
        }
        with sdk_errors():
            self.client.transact_write_items(
                TransactItems=[
                    {
                        "Put": {
                            "TableName": self.table,
                            "Item": to_item(item),
                            "ConditionExpression": "attribute_not_exists(pk)",
                        }
                    },
                    {"Put": {"TableName": self.table, "Item": to_item(listing)}},
                ]
            )

    def find_token(self, token_hash: str) -> TokenRecord | None:
        item = self.get(f"TOKEN#{token_hash}", "TOKEN")
        return TokenRecord.model_validate(item) if item else None

    def list_tokens(self, project_id: str) -> list[dict[str, Any]]:
        return self.query(project_pk(project_id), "TOKENREF#")

    def revoke_token(self, project_id: str, token_id: str) -> bool:
        ref = self.get(project_pk(project_id), f"TOKENREF#{token_id}")
        if not ref:
            return False
        with sdk_errors():
            self.client.update_item(
                TableName=self.table,
                Key=key(f"TOKEN#{ref['token_hash']}", "TOKEN"),
                UpdateExpression="SET revoked = :yes",
                ExpressionAttributeValues={":yes": {"BOOL": True}},
            )
        return True

    # -- employees ---------------------------------------------------------------------------------------------
    def put_employee(self, project_id: str, employee: Employee) -> None:
        item = {
            "pk": project_pk(project_id),
            "sk": f"EMPLOYEE#{employee.id}",
            "type": "employee",
            **employee.model_dump(mode="json"),
        }
        with sdk_errors():
            self.client.put_item(TableName=self.table, Item=to_item(item))

    def get_employee(self, project_id: str, employee_id: str) -> Employee | None:
        item = self.get(project_pk(project_id), f"EMPLOYEE#{employee_id}")
        return Employee.model_validate(item) if item else None

    def list_employees(self, project_id: str) -> list[Employee]:
        return [Employee.model_validate(i) for i in self.query(project_pk(project_id), "EMPLOYEE#")]


def dynamodb_client() -> DynamoDBClient:
    # Standard retry mode retries throttling with backoff. 3 attempts in all, each at most 1 s to connect and 3 s to
    # read: a stuck DynamoDB costs at most ~12 s and the 503 still goes out within the 15 s Lambda timeout.
    config = Config(retries={"mode": "standard", "total_max_attempts": 3}, connect_timeout=1, read_timeout=3)
    return boto3.client("dynamodb", config=config)


@lru_cache(maxsize=1)
def get_storage() -> Storage:
    return Storage(dynamodb_client(), get_settings().table_name)
