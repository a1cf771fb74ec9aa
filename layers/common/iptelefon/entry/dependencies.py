"""The composition root: cached factories that build what a use case receives, once per warm Lambda.

A handler calls them and passes the result (and the Lambda context) to the use case; a unit test builds the same
dataclasses from in-memory fakes (`tests/fakes/`).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from iptelefon.adapters.pbx import PbxClient, get_pbx_client, method_names
from iptelefon.data.attempts import AttemptStore
from iptelefon.data.clients import ClientStore
from iptelefon.data.employees import EmployeeStore
from iptelefon.data.gateway import WORST_CALL_SECONDS, Storage, get_storage
from iptelefon.data.idempotency_store import IdempotencyStore
from iptelefon.data.pbx_settings import PbxSettingsStore, get_pbx_credentials, ssm_provider
from iptelefon.data.projects import project_store
from iptelefon.data.rate_counters import RateCounterStore
from iptelefon.data.tokens import TokenStore
from iptelefon.domain.pbx_connection import PbxConnection
from iptelefon.platform import budget
from iptelefon.platform.settings import get_settings
from iptelefon.usecases.admin import AdminDeps
from iptelefon.usecases.auth import AuthDeps
from iptelefon.usecases.calls import CallDeps


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


# -- calls (the call-starting routes; the admin API's connection check) ----------------------------------------------
def pbx_client() -> PbxClient:
    """The PBX client (one shared httpx client per warm Lambda)."""
    return get_pbx_client()


@lru_cache(maxsize=1)
def idempotency_store() -> IdempotencyStore:
    """The call routes' Idempotency-Key store (Powertools is imported when a key is first used)."""
    return IdempotencyStore(get_settings().idempotency_table_name)


def call_deps() -> CallDeps:
    """What starting a call talks to. Cheap: every part is cached (the storage, the PBX client, the idempotency
    store) or a small wrapper around one."""
    storage = get_storage()
    return CallDeps(
        attempts=AttemptStore(storage),
        counters=RateCounterStore(storage),
        clients=ClientStore(storage),
        employees=EmployeeStore(storage),
        pbx=pbx_client(),
        pbx_credentials=get_pbx_credentials,
        idempotency=idempotency_store(),
        pbx_timeout_seconds=get_settings().pbx_timeout_seconds,
        spare_seconds=_spare_seconds_for_the_pbx,
    )


def _spare_seconds_for_the_pbx() -> float:
    # What is left of the invocation once recording the PBX's answer (one storage call at its worst) is set aside.
    return budget.spare_seconds() - WORST_CALL_SECONDS
