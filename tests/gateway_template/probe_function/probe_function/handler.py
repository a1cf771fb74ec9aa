"""Answers {"pid", "name", "remaining_ms", "started_at", "ended_at", "query"} after sleeping `sleep` seconds;
`{"crash": true}` raises."""

from __future__ import annotations

import json
import os
import time
from typing import Any

from probe import describe  # from the layer, as /opt/python would provide it


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    request = json.loads(event.get("body") or "{}")
    if request.get("crash"):
        raise RuntimeError("the probe was asked to crash")
    print("a log line on stdout must not break the gateway's protocol")
    started_at = time.time()
    time.sleep(float(request.get("sleep", 0)))
    answer = describe(os.getpid(), os.environ["PROBE_NAME"], context.get_remaining_time_in_millis())
    answer.update(started_at=started_at, ended_at=time.time(), query=event.get("queryStringParameters"))
    return {"statusCode": 200, "headers": {"Content-Type": "application/json"}, "body": json.dumps(answer)}
