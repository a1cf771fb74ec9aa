"""Per-project PBX connection (server_url + secret) in SSM Parameter Store, read through Powertools Parameters.

Layout: <ssm_prefix>/projects/<project_id>/server_url (String) and .../secret (SecureString). One
GetParametersByPath call per project, then cached for `ssm_cache_seconds` in the warm Lambda.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from aws_lambda_powertools.utilities import parameters

from iptelefon.errors import NotFound
from iptelefon.settings import get_settings


@dataclass(frozen=True)
class PbxCredentials:
    server_url: str
    secret: str = field(repr=False)


def project_ssm_path(ssm_prefix: str, project_id: str) -> str:
    return f"{ssm_prefix}/projects/{project_id}"


def get_pbx_credentials(project_id: str) -> PbxCredentials:
    values: dict[str, Any] = parameters.get_parameters(
        project_ssm_path(get_settings().ssm_prefix, project_id), decrypt=True, max_age=get_settings().ssm_cache_seconds
    )
    if not values.get("server_url") or not values.get("secret"):
        raise NotFound(f"project {project_id} has no PBX connection configured")
    return PbxCredentials(server_url=str(values["server_url"]), secret=str(values["secret"]))


def put_pbx_credentials(ssm_client: Any, ssm_prefix: str, project_id: str, credentials: PbxCredentials) -> None:
    """Admin side: write (or overwrite) a project's PBX connection; the secret as SecureString."""
    path = project_ssm_path(ssm_prefix, project_id)
    ssm_client.put_parameter(Name=f"{path}/server_url", Value=credentials.server_url, Type="String", Overwrite=True)
    ssm_client.put_parameter(Name=f"{path}/secret", Value=credentials.secret, Type="SecureString", Overwrite=True)
