"""Settings from the Lambda environment, read and validated once, on first use (never at import)."""

from __future__ import annotations

import os
from functools import lru_cache
from typing import Literal

from pydantic import BaseModel, Field

# Where PBX requests may go (`domain.pbx_address`): `public` https addresses only, or also this machine over http
# (`local`: the local stack's PBX simulator). An explicit setting of the stage, never guessed from a host name.
PbxNetwork = Literal["public", "local"]


class Settings(BaseModel):
    table_name: str = Field(min_length=3)
    idempotency_table_name: str = Field(min_length=3)
    # SSM path of this stage, e.g. /iptelefon-connector/dev; projects live under <ssm_prefix>/projects/<id>/.
    ssm_prefix: str = Field(pattern=r"^/[A-Za-z0-9_./-]+$")
    stage: str = "dev"
    pbx_timeout_seconds: float = Field(default=10.0, gt=0, le=25)
    ssm_cache_seconds: int = Field(default=300, ge=0)
    max_webhook_body_bytes: int = 64 * 1024
    pbx_network: PbxNetwork = "public"
    # The webhook's durable inbox (SQS); only the webhook function has it.
    inbox_queue_url: str | None = None
    # The stage's stable domain (template parameter DomainName) as https://<domain>: webhook URLs use it whichever
    # host the console was opened on. None (empty): the URL the request came in on.
    public_base_url: str | None = Field(default=None, pattern=r"^https://[A-Za-z0-9.-]+(:\d+)?$")
    # Call events' delivery queue (the events function and the admin API's replays).
    event_queue_url: str | None = None
    # > 1 shrinks the call events' waits (retries, disabling): the local bench's simulated hours; 1 when deployed.
    events_time_scale: float = Field(default=1.0, ge=1.0, le=100_000)
    # Recordings (issue 25): the archive bucket, the copy queue, the largest file copied.
    recordings_bucket: str | None = None
    recording_queue_url: str | None = None
    recording_max_bytes: int = Field(default=100 * 1024 * 1024, gt=0)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    env = os.environ
    values = {
        "table_name": env.get("TABLE_NAME"),
        "idempotency_table_name": env.get("IDEMPOTENCY_TABLE_NAME"),
        "ssm_prefix": env.get("SSM_PREFIX"),
        "stage": env.get("STAGE"),
        "pbx_timeout_seconds": env.get("PBX_TIMEOUT_SECONDS"),
        "ssm_cache_seconds": env.get("SSM_CACHE_SECONDS"),
        "inbox_queue_url": env.get("INBOX_QUEUE_URL"),
        "event_queue_url": env.get("EVENT_QUEUE_URL"),
        "events_time_scale": env.get("EVENTS_TIME_SCALE"),
        "pbx_network": env.get("PBX_NETWORK"),
        "public_base_url": env.get("PUBLIC_BASE_URL") or None,
        "recordings_bucket": env.get("RECORDINGS_BUCKET"),
        "recording_queue_url": env.get("RECORDING_QUEUE_URL"),
        "recording_max_bytes": int(env["RECORDING_MAX_MEGABYTES"]) * 1024 * 1024
        if env.get("RECORDING_MAX_MEGABYTES")
        else None,
    }
    return Settings.model_validate({k: v for k, v in values.items() if v is not None})
