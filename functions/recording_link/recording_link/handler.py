"""GET /r/{recording_id}: the stable link of a call's recording (issue 25), public (no token; the id is the secret).

A 302 to a presigned S3 GET of a few minutes once archived, to the PBX's link before (or if the copy failed); to the
console when the project lets only signed-in users listen (`recording_access: console`). Unknown: a JSON 404.
"""

from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Path
from aws_lambda_powertools.utilities.typing import LambdaContext

from iptelefon.domain.recordings import RECORDING_ID_PATTERN
from iptelefon.entry import dependencies
from iptelefon.entry.api import SECURITY_HEADERS, api_base_url, create_resolver
from iptelefon.platform.budget import within_invocation
from iptelefon.platform.observability import logger, metrics
from iptelefon.usecases.recordings import follow_link

app = create_resolver(validation=False)


@app.get("/r/<recording_id>")
def recording_link(recording_id: Annotated[str, Path(pattern=RECORDING_ID_PATTERN)]) -> Response[str]:
    # The pattern describes the id in the OpenAPI document; any other id is simply unknown (404), as on every route
    location = follow_link(dependencies.recording_link_deps(), recording_id, f"{api_base_url(app)}/console")
    # The target is short-lived (a presigned URL): never cached, never sent on as a referrer.
    headers = {**SECURITY_HEADERS, "Location": location, "Referrer-Policy": "no-referrer"}
    return Response(status_code=302, body="", headers=headers)


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    with within_invocation(context):
        return app.resolve(event, context)
