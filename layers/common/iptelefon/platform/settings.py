"""Settings from the Lambda environment, read and validated once, on first use (never at import)."""

from __future__ import annotations

import os
from functools import lru_cache

from pydantic import BaseModel, Field


class Settings(BaseModel):
    table_name: str = Field(min_length=3)
    idempotency_table_name: str = Field(min_length=3)
    # SSM path of this stage, e.g. /iptelefon-connector/dev; projects live under <ssm_prefix>/projects/<id>/.
    ssm_prefix: str = Field(pattern=r"^/[A-Za-z0-9_./-]+$")
    stage: str = "dev"
    pbx_timeout_seconds: float = Field(default=10.0, gt=0, le=25)
    ssm_cache_seconds: int = Field(default=300, ge=0)
    max_webhook_body_bytes: int = 64 * 1024
    # The webhook's durable inbox (SQS); only the webhook function has it.
    inbox_queue_url: str | None = None


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
    }
    return Settings.model_validate({k: v for k, v in values.items() if v is not None})
