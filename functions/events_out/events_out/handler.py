"""Call events out (issue 22), fed three ways, each a use case of `usecases.call_events`:

- the DynamoDB Stream of the main table (filtered to new outbox items): relay each event to the delivery queue;
- a schedule (every minute): the sweep, relaying what the stream did not (the safety net), and the missed calls'
  callback tasks past their SLA announced (`callback.overdue`, issue 23);
- the delivery queue (SQS): one attempt per message, the batch's messages side by side (a slow endpoint holds up
  no other) except one call's events to one endpoint, which go one after the other in the call's order; partial
  batch failures (a message whose storage is away comes back).
"""

import contextvars
import json
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from iptelefon.entry import dependencies
from iptelefon.platform.budget import within_invocation
from iptelefon.platform.observability import logger, metrics
from iptelefon.usecases import call_events, callbacks

_pool = ThreadPoolExecutor(max_workers=10)


def _deliver(records: list[dict[str, Any]]) -> list[str]:
    """One call's messages to one endpoint, in the call's order; the ids of those that failed (they come back)."""
    failed = []
    for record in records:
        try:
            outcome = call_events.deliver(dependencies.event_deps(sending=True), json.loads(record["body"]))
            logger.debug("delivery message", extra={"message_id": record.get("messageId"), "outcome": outcome})
        except Exception:
            logger.exception("delivery message failed", extra={"message_id": record.get("messageId")})
            failed.append(str(record.get("messageId")))
    return failed


def _in_order(records: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """The batch's messages grouped by (endpoint, call), each group in the call's order."""
    groups: dict[tuple[str, str], list[tuple[int, dict[str, Any]]]] = {}
    for record in records:
        try:
            message = json.loads(record["body"])
            key, rank = (str(message["endpoint_id"]), str(message.get("order_key"))), int(message.get("rank", 0))
        except (ValueError, KeyError, TypeError):
            key, rank = ("", str(record.get("messageId"))), 0  # unreadable: alone (deliver reports it)
        groups.setdefault(key, []).append((rank, record))
    return [[record for _, record in sorted(group, key=lambda pair: pair[0])] for group in groups.values()]


def _stream_keys(records: list[dict[str, Any]]) -> list[tuple[str, str]]:
    keys = []
    for record in records:
        image = record.get("dynamodb", {}).get("NewImage") or {}
        if image.get("type", {}).get("S") != "call_event":  # the template's filter already keeps only these
            continue
        keys.append((image["pk"]["S"].removeprefix("PROJECT#"), image["sk"]["S"].removeprefix("EVENT#")))
    return keys


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    with within_invocation(context):
        records = event.get("Records") or []
        if records and records[0].get("eventSource") == "aws:sqs":
            runs = [_pool.submit(contextvars.copy_context().run, _deliver, group) for group in _in_order(records)]
            failed = [message_id for run in runs for message_id in run.result()]
            return {"batchItemFailures": [{"itemIdentifier": message_id} for message_id in failed]}
        deps = dependencies.event_deps()
        if records:  # the stream: a failure makes Lambda retry the batch (the relay is repeatable)
            return {"relayed": call_events.relay_stored(deps, _stream_keys(records))}
        overdue = callbacks.announce_overdue(dependencies.callback_deps())  # the schedule
        return {"swept": call_events.sweep(deps), "overdue": overdue}
