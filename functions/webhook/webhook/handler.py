"""POST|GET /iptelefon_webhook/{secret}: the PBX's call-completion callback."""

from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.utilities.typing import LambdaContext

from iptelefon.data.gateway import WORST_CALL_SECONDS
from iptelefon.data.inbox import SEND_WORST_SECONDS
from iptelefon.domain.webhook_body import WebhookRequest
from iptelefon.entry import dependencies
from iptelefon.entry.api import api_base_url, create_resolver, json_body
from iptelefon.platform.budget import within_invocation
from iptelefon.platform.observability import logger, metrics
from iptelefon.platform.snapstart import prime_before_snapshot
from iptelefon.usecases.webhook import receive_webhook

app = create_resolver(validation=False)  # the route reads the raw request itself (`WebhookRequest`)
prime_before_snapshot(dependencies.webhook_deps)  # SnapStart only (the snapshot)
# A storage call starts only if, at its worst, it still leaves the time to put the request into the inbox.
RESERVE_SECONDS = WORST_CALL_SECONDS + SEND_WORST_SECONDS


@app.post("/iptelefon_webhook/<secret>")
@app.get("/iptelefon_webhook/<secret>")
def webhook(secret: str) -> Response[dict[str, Any]]:
    event = app.current_event
    request = WebhookRequest.from_event(event.raw_event, api_base=api_base_url(app))
    return json_body(receive_webhook(dependencies.webhook_deps(), secret, request))


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    with within_invocation(context, reserve_seconds=RESERVE_SECONDS):
        return app.resolve(event, context)
