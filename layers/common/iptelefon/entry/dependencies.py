"""The composition root: cached factories that build what a use case receives, once per warm Lambda.

A handler calls them and passes the result (and the Lambda context) to the use case; a unit test builds the same
dataclasses from in-memory fakes (`tests/fakes/`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from iptelefon.adapters.pbx import PbxClient, PbxConnection, method_names
from iptelefon.data.employees import EmployeeStore
from iptelefon.data.gateway import Storage, get_storage
from iptelefon.data.pbx_settings import PbxSettingsStore, ssm_provider
from iptelefon.data.projects import project_store
from iptelefon.data.tokens import TokenStore
from iptelefon.platform.settings import get_settings
from iptelefon.usecases.admin import AdminDeps
from iptelefon.usecases.auth import AuthDeps


# -- admin and auth ----------------------------------------------------------------------------------------------------
def auth_deps() -> AuthDeps:
    """What `authenticate` reads, over this Lambda's storage client."""
    storage = get_storage()
    return AuthDeps(tokens=TokenStore(storage), projects=project_store(storage))


def admin_deps() -> AdminDeps:
    """What the admin use cases change: the table through this Lambda's storage client, SSM through its SSM client."""
    return admin_deps_over(get_storage(), ssm_provider().client, get_settings().ssm_prefix)


def admin_deps_over(storage: Storage, ssm_client: Any, ssm_prefix: str) -> AdminDeps:
    """The admin dependencies over given clients: the Lambda's own, or the admin CLI's target (a stage, the local
    stack)."""
    return AdminDeps(
        projects=project_store(storage),
        employees=EmployeeStore(storage),
        tokens=TokenStore(storage),
        pbx_settings=PbxSettingsStore(ssm_client, ssm_prefix),
    )


@dataclass(frozen=True)
class PbxProbe:
    """A project's PBX as the settings check asks it (implements `usecases.ports.PbxCheck`)."""

    client: PbxClient
    connection: PbxConnection

    def ping(self) -> Any:
        return self.client.ping(self.connection)

    def method_names(self) -> list[str]:
        return method_names(self.client.method_list(self.connection))
