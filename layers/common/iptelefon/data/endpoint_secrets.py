"""Endpoint signing secrets in SSM Parameter Store: one SecureString per endpoint, apart from the PBX connections.

  <ssm_prefix>/endpoint-secrets/<project_id>/<endpoint_id>   JSON {"current": "whsec_…", "previous": "whsec_…",
                                                             "previous_valid_until": <epoch s>}

Another path than `<ssm_prefix>/projects/` on purpose: the functions that read the PBX secrets cannot read these, and
the events function reads only these (template.yaml's policies). A rotation keeps the old secret signing beside the new
one until `previous_valid_until`.
"""

from __future__ import annotations

import json
import time
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from iptelefon.domain.errors import StorageUnavailable


def endpoint_secret_name(ssm_prefix: str, project_id: str, endpoint_id: str) -> str:
    return f"{ssm_prefix}/endpoint-secrets/{project_id}/{endpoint_id}"


class EndpointSecretStore:
    """`usecases.ports.EndpointSecrets` over an SSM client. `cache_seconds` > 0 (the events function's): a warm Lambda
    reads an endpoint's secrets once in that time. Safe with rotation: a new secret signs beside the old one for its
    grace period, so a receiver that knows either keeps verifying (a grace of 0 may lag by `cache_seconds`)."""

    def __init__(self, client: Any, ssm_prefix: str, *, cache_seconds: float = 0.0) -> None:
        self.client = client
        self.ssm_prefix = ssm_prefix
        self.cache_seconds = cache_seconds
        self._cached: dict[tuple[str, str], tuple[float, dict[str, Any] | None]] = {}

    def put(self, project_id: str, endpoint_id: str, current: str, *, previous: str | None, valid_until: int) -> None:
        value: dict[str, Any] = {"current": current}
        if previous is not None:
            value |= {"previous": previous, "previous_valid_until": valid_until}
        name = endpoint_secret_name(self.ssm_prefix, project_id, endpoint_id)
        try:
            self.client.put_parameter(Name=name, Value=json.dumps(value), Type="SecureString", Overwrite=True)
        except (BotoCoreError, ClientError) as error:
            raise StorageUnavailable("the endpoint's secret could not be stored, retry") from error

    def get(self, project_id: str, endpoint_id: str) -> dict[str, Any] | None:
        key = (project_id, endpoint_id)
        cached = self._cached.get(key)
        if cached is not None and time.monotonic() < cached[0]:
            return cached[1]
        value = self._read(project_id, endpoint_id)
        if self.cache_seconds > 0:
            self._cached[key] = (time.monotonic() + self.cache_seconds, value)
        return value

    def _read(self, project_id: str, endpoint_id: str) -> dict[str, Any] | None:
        name = endpoint_secret_name(self.ssm_prefix, project_id, endpoint_id)
        try:
            reply = self.client.get_parameter(Name=name, WithDecryption=True)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "ParameterNotFound":
                return None
            raise StorageUnavailable("the endpoint's secret is unavailable, retry later") from error
        except BotoCoreError as error:
            raise StorageUnavailable("the endpoint's secret is unavailable, retry later") from error
        value: dict[str, Any] = json.loads(reply["Parameter"]["Value"])
        return value

    def delete(self, project_id: str, endpoint_id: str) -> None:
        name = endpoint_secret_name(self.ssm_prefix, project_id, endpoint_id)
        try:
            self.client.delete_parameter(Name=name)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "ParameterNotFound":
                raise StorageUnavailable("the endpoint's secret could not be deleted, retry") from error
