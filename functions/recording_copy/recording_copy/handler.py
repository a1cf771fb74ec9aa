"""SQS RecordingQueue → each recording copied into the archive; EventBridge schedule → the sweep of pending ones.

Partial batch failures (Powertools batch utility): a copy that failed for a reason a later try may cure (a timeout,
a 5xx) fails alone and comes back after the queue's visibility timeout; after MaxReceiveCount tries it moves to the
dead-letter queue (the recording stays pending: the sweep gives up on it after a day). A permanent failure is no
failure here: the recording is marked `failed` with its reason.
"""

import json
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from iptelefon.entry import dependencies
from iptelefon.platform.observability import logger, metrics
from iptelefon.usecases.recordings import copy_recording, sweep_pending

processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)


def copy(record: SQSRecord) -> None:
    recording_id = str(json.loads(record.body)["recording_id"])
    state = copy_recording(dependencies.recording_copy_deps(), recording_id)
    logger.info("recording copy done", extra={"message_id": record.message_id, "state": state})


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse | dict[str, int]:
    if "Records" not in event:  # the schedule (EventBridge): re-queue what waits too long
        swept = sweep_pending(dependencies.recording_copy_deps())
        logger.info("recordings swept", extra=swept)
        return swept
    return process_partial_response(event=event, record_handler=copy, processor=processor, context=context)
