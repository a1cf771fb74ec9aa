"""SQS WebhookInbox → the webhooks that waited while storage was unavailable, applied once each.

Partial batch failures (Powertools batch utility): a message whose storage is still away fails alone and comes back
after the queue's visibility timeout; after MaxReceiveCount failures it moves to the dead-letter queue.
"""

from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from iptelefon.data.gateway import WORST_CALL_SECONDS
from iptelefon.entry import dependencies
from iptelefon.platform.budget import within_invocation
from iptelefon.platform.observability import logger, metrics
from iptelefon.platform.snapstart import prime_before_snapshot
from iptelefon.usecases.webhook import apply_queued

prime_before_snapshot(dependencies.webhook_deps)  # SnapStart only (the snapshot)

# When every message fails (storage still away), say so per message, as for some: no invocation error to alarm on.
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)


def apply(record: SQSRecord) -> None:
    outcome = apply_queued(dependencies.webhook_deps(), record.body)
    if outcome is not None:
        logger.info("inbox: queued webhook applied", extra={"message_id": record.message_id, **outcome})


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    # A storage call starts only if it can end before the invocation does (a half-applied message is retried anyway).
    with within_invocation(context, reserve_seconds=WORST_CALL_SECONDS):
        return process_partial_response(event=event, record_handler=apply, processor=processor, context=context)
