"""Per-project PBX connection (server_url + secret) in SSM Parameter Store, read through Powertools Parameters.

Layout: <ssm_prefix>/projects/<project_id>/server_url (String) and .../secret (SecureString). One
GetParametersByPath call per project, then cached for `ssm_cache_seconds` in the warm Lambda. The admin's reads
(`PbxSettingsStore`) skip that cache: one GetParametersByPath per request, so a change shows at once.

SSM gets its own client on the default session (Powertools would build a second session, and its default client waits
60 s for an answer), with short timeouts that fit the Lambda's budget. Throttling, a 5xx or an unreachable endpoint
that outlived the client's retries is StorageUnavailable (503 + Retry-After), not a 500.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import boto3
from aws_lambda_powertools.utilities.parameters import SSMProvider
from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from iptelefon.domain.errors import NotFound, StorageUnavailable
from iptelefon.domain.models import PbxCredentials
from iptelefon.platform.settings import get_settings

# 2 attempts of at most 0.5 s to connect and 1.5 s to read: the same budget as a DynamoDB call.
SSM_CONFIG = Config(retries={"mode": "standard", "total_max_attempts": 2}, connect_timeout=0.5, read_timeout=1.5)
_UNAVAILABLE_CODES = {"ThrottlingException", "TooManyUpdates", "InternalServerError", "ServiceUnavailable"}


def project_ssm_path(ssm_prefix: str, project_id: str) -> str:
    return f"{ssm_prefix}/projects/{project_id}"


@lru_cache(maxsize=1)
def ssm_provider() -> SSMProvider:
    """Reads through Powertools (cached); its `.client` writes (the admin API)."""
    return SSMProvider(boto3_client=boto3.client("ssm", config=SSM_CONFIG))


def get_pbx_credentials(project_id: str, *, now: bool = False) -> PbxCredentials:
    """The project's PBX connection from the warm Lambda's cache (`ssm_cache_seconds`), or read `now` (and cached)."""
    settings = get_settings()
    path = project_ssm_path(settings.ssm_prefix, project_id)
    try:
        values: dict[str, Any] = ssm_provider().get_multiple(
            path, decrypt=True, max_age=settings.ssm_cache_seconds, force_fetch=now
        )
    except GetParameterError as error:
        if _unavailable(error.__context__):  # Powertools wraps every SDK error; the SDK's own is its context
            raise StorageUnavailable("the project's PBX settings are unavailable, retry later") from error
        raise
    if not values.get("server_url") or not values.get("secret"):
        raise NotFound(f"project {project_id} has no PBX connection configured")
    return PbxCredentials(server_url=str(values["server_url"]), secret=str(values["secret"]))


def get_pbx_credentials_now(project_id: str) -> PbxCredentials:
    return get_pbx_credentials(project_id, now=True)


def _unavailable(error: BaseException | None) -> bool:
    if isinstance(error, BotoCoreError):  # unreachable, connection closed, read timeout
        return True
    if isinstance(error, ClientError):
        answer = error.response
        status = int(answer.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
        return answer.get("Error", {}).get("Code") in _UNAVAILABLE_CODES or status >= 500
    return False


class PbxSettingsStore:
    """A project's PBX connection as the admin reads and writes it (implements `usecases.ports.PbxSettings`)."""

    def __init__(self, client: Any, ssm_prefix: str) -> None:
        self.client = client
        self.ssm_prefix = ssm_prefix

    def read(self, project_id: str) -> PbxCredentials:
        """Both parameters, the secret decrypted, with one GetParametersByPath (not from the warm Lambda's cache)."""
        path = project_ssm_path(self.ssm_prefix, project_id)
        try:
            reader = SSMProvider(boto3_client=self.client)
            values: dict[str, Any] = reader.get_multiple(path, decrypt=True, force_fetch=True)
        except GetParameterError as error:  # Powertools wraps every SDK error
            raise StorageUnavailable("the project's PBX settings are unavailable, retry later") from error
        if not values.get("server_url") or not values.get("secret"):
            raise NotFound(f"project {project_id} has no PBX connection in SSM under {path}/")
        return PbxCredentials(server_url=str(values["server_url"]), secret=str(values["secret"]))

    def write(self, project_id: str, credentials: PbxCredentials) -> None:
        put_pbx_credentials(self.client, self.ssm_prefix, project_id, credentials)


def put_pbx_credentials(ssm_client: Any, ssm_prefix: str, project_id: str, credentials: PbxCredentials) -> None:
    """Write (or overwrite) a project's PBX connection; the secret as SecureString."""
    path = project_ssm_path(ssm_prefix, project_id)
    ssm_client.put_parameter(Name=f"{path}/server_url", Value=credentials.server_url, Type="String", Overwrite=True)
    ssm_client.put_parameter(Name=f"{path}/secret", Value=credentials.secret, Type="SecureString", Overwrite=True)
