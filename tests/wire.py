"""AWS answers in AWS's own wire format, injected in front of a real botocore client.

A `before-send` handler returns a raw HTTP response instead of sending the request: botocore parses it exactly as it
parses DynamoDB's or SSM's own replies (error code, `CancellationReasons`, status), and its retry handler decides as it
would in AWS. Nothing of the service is patched: its code sees what AWS would have answered.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

from botocore.awsrequest import AWSResponse
from botocore.exceptions import ReadTimeoutError

DYNAMODB_ERROR_PREFIX = "com.amazonaws.dynamodb.v20120810#"

# What an injector does with one attempt: an answer, an exception to raise (a timeout), or None to send it for real.
Answer = Callable[[Any], "AWSResponse | None"]


class _Body:
    """The `raw` of an AWSResponse: botocore reads the body through `stream()`."""

    def __init__(self, data: bytes) -> None:
        self._data = data

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._data


def aws_json_error(request: Any, status: int, error_type: str, message: str, **extra: Any) -> AWSResponse:
    body = {"__type": error_type, "message": message, **extra}
    headers = {"Content-Type": "application/x-amz-json-1.1", "x-amzn-RequestId": "injected"}
    return AWSResponse(request.url, status, headers, _Body(json.dumps(body).encode()))


def dynamodb_error(code: str, message: str = "injected", status: int = 400) -> Answer:
    """e.g. dynamodb_error("ValidationException", ...), dynamodb_error("InternalServerError", status=500)."""
    return lambda request: aws_json_error(request, status, DYNAMODB_ERROR_PREFIX + code, message)


def cancelled(*codes: str) -> Answer:
    """TransactWriteItems cancelled as DynamoDB does it: one reason per item, in the order of the request's items.

    `codes` are the reasons of the first items (e.g. "None", "TransactionConflict"); the rest are "None".
    """

    def answer(request: Any) -> AWSResponse:
        items = len(json.loads(request.body)["TransactItems"])
        reasons = [{"Code": code} for code in codes[:items]] + [{"Code": "None"}] * (items - len(codes))
        for reason in reasons:
            if reason["Code"] == "TransactionConflict":
                reason["Message"] = "Transaction is ongoing for the item"
            elif reason["Code"] == "ValidationError":
                reason["Message"] = "Item size has exceeded the maximum allowed size"
        listed = ", ".join(r["Code"] for r in reasons)
        return aws_json_error(
            request,
            400,
            DYNAMODB_ERROR_PREFIX + "TransactionCanceledException",
            f"Transaction cancelled, please refer cancellation reasons for specific reasons [{listed}]",
            CancellationReasons=reasons,
        )

    return answer


def ssm_error(code: str, status: int = 400) -> Answer:
    return lambda request: aws_json_error(request, status, code, "injected")


def read_timeout() -> Answer:
    def answer(request: Any) -> AWSResponse:
        raise ReadTimeoutError(endpoint_url=request.url)

    return answer


class Injector:
    """Answers attempts of `operation` on `clients` with `answer`: the first `times` (None: every one), and only those
    whose API params satisfy `where`. `on_attempt` runs before each matching attempt (e.g. a competing write)."""

    def __init__(
        self,
        clients: list[Any],
        operation: str,
        answer: Answer,
        *,
        times: int | None = None,
        where: Callable[[dict[str, Any]], bool] | None = None,
    ) -> None:
        self.operation, self.answer, self.times, self.where = operation, answer, times, where
        self.attempts = 0
        self.injected = 0
        self._registered = [
            (client, f"before-send.{client.meta.service_model.endpoint_prefix}.{operation}") for client in clients
        ]
        for client, event in self._registered:
            client.meta.events.register_first(event, self._before_send)

    def remove(self) -> None:
        """AWS answers for itself again."""
        for client, event in self._registered:
            client.meta.events.unregister(event, self._before_send)

    def _before_send(self, request: Any, **_: Any) -> AWSResponse | None:
        if self.where is not None and not self.where(json.loads(request.body or b"{}")):
            return None
        self.attempts += 1
        if self.times is not None and self.injected >= self.times:
            return None  # sent for real
        self.injected += 1
        return self.answer(request)
