"""The composition root: what a handler hands its use case. Each part is built once per warm Lambda (cached
factories); a handler calls a factory here and passes the result, with the Lambda context, to the use case."""

from __future__ import annotations

from functools import lru_cache

from iptelefon.adapters.pbx import PbxClient, get_pbx_client
from iptelefon.data.attempts import AttemptStore
from iptelefon.data.clients import ClientStore
from iptelefon.data.gateway import WORST_CALL_SECONDS, get_storage
from iptelefon.data.idempotency_store import IdempotencyStore
from iptelefon.data.pbx_settings import get_pbx_credentials
from iptelefon.data.rate_counters import RateCounterStore
from iptelefon.platform import budget
from iptelefon.platform.settings import get_settings
from iptelefon.usecases.calls import CallDeps


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
        employees=storage,
        pbx=pbx_client(),
        pbx_credentials=get_pbx_credentials,
        idempotency=idempotency_store(),
        pbx_timeout_seconds=get_settings().pbx_timeout_seconds,
        spare_seconds=_spare_seconds_for_the_pbx,
    )


def _spare_seconds_for_the_pbx() -> float:
    # What is left of the invocation once recording the PBX's answer (one storage call at its worst) is set aside.
    return budget.spare_seconds() - WORST_CALL_SECONDS
