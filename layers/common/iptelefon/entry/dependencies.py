"""The composition root: what each use case is handed, built on what each warm Lambda keeps (the storage client, the
project cache, the PBX client, the idempotency store).

A handler calls its use case's factory and passes the result (and the Lambda context, where the use case needs it)
to the use case; a unit test builds the same dataclasses from in-memory fakes (`tests/fakes/`). Each factory imports
its own parts when first called: a function imports only the rooms its use case uses (the webhook never loads the PBX
client, the call routes never load the SQS inbox).
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from iptelefon.data.gateway import WORST_CALL_SECONDS, Storage, get_storage
from iptelefon.platform import budget
from iptelefon.platform.settings import get_settings

SECRETS_CACHE_SECONDS = 60.0

if TYPE_CHECKING:
    from iptelefon.adapters.pbx import PbxClient
    from iptelefon.data.endpoint_secrets import EndpointSecretStore
    from iptelefon.data.idempotency_store import IdempotencyStore
    from iptelefon.domain.pbx_address import PbxNetwork
    from iptelefon.domain.pbx_connection import PbxConnection
    from iptelefon.usecases.admin import AdminDeps
    from iptelefon.usecases.auth import AuthDeps
    from iptelefon.usecases.call_events import EventDeps
    from iptelefon.usecases.callbacks import CallbackDeps
    from iptelefon.usecases.calls import CallDeps
    from iptelefon.usecases.reads import ReadDeps
    from iptelefon.usecases.recordings import CopyDeps, LinkDeps
    from iptelefon.usecases.stats import StatsDeps
    from iptelefon.usecases.webhook import WebhookDeps


# -- webhook and reads -------------------------------------------------------------------------------------------------
def webhook_deps() -> WebhookDeps:
    """What the webhook (and the inbox's replay of it) talks to, over this Lambda's storage client."""
    import time

    from iptelefon.data.attempts import AttemptStore
    from iptelefon.data.call_records import CallRecordStore
    from iptelefon.data.callbacks import CallbackStore
    from iptelefon.data.clients import ClientStore
    from iptelefon.data.inbox import SqsInbox
    from iptelefon.data.live_calls import LiveCallStore
    from iptelefon.data.pbx_settings import get_pbx_credentials, get_pbx_credentials_now
    from iptelefon.data.projects import project_store
    from iptelefon.data.recordings import SqsRecordingQueue
    from iptelefon.usecases.webhook import WebhookDeps

    storage = get_storage()
    return WebhookDeps(
        projects=project_store(storage),
        clients=ClientStore(storage),
        calls=CallRecordStore(storage),
        attempts=AttemptStore(storage),
        live=LiveCallStore(storage),
        callbacks=CallbackStore(storage),
        pbx_credentials=get_pbx_credentials,
        pbx_credentials_now=get_pbx_credentials_now,
        inbox=SqsInbox(),
        clock=time.time,
        recording_queue=SqsRecordingQueue() if get_settings().recording_queue_url else None,
    )


def read_deps() -> ReadDeps:
    import time

    from iptelefon.data.attempts import AttemptStore
    from iptelefon.data.call_records import CallRecordStore
    from iptelefon.data.clients import ClientStore
    from iptelefon.data.employees import EmployeeStore
    from iptelefon.data.live_calls import LiveCallStore
    from iptelefon.usecases.reads import ReadDeps

    storage = get_storage()
    return ReadDeps(
        clients=ClientStore(storage),
        calls=CallRecordStore(storage),
        attempts=AttemptStore(storage),
        live=LiveCallStore(storage),
        employees=EmployeeStore(storage),
        clock=time.time,
    )


def callback_deps() -> CallbackDeps:
    import time

    from iptelefon.data.callbacks import CallbackStore
    from iptelefon.data.employees import EmployeeStore
    from iptelefon.usecases.callbacks import CallbackDeps

    storage = get_storage()
    return CallbackDeps(tasks=CallbackStore(storage), employees=EmployeeStore(storage), clock=time.time)


def stats_deps() -> StatsDeps:
    from iptelefon.data.call_stats import StatsStore
    from iptelefon.data.callbacks import CallbackStore
    from iptelefon.data.employees import EmployeeStore
    from iptelefon.usecases.stats import StatsDeps

    storage = get_storage()
    return StatsDeps(rows=StatsStore(storage), tasks=CallbackStore(storage), employees=EmployeeStore(storage))


# -- recordings (issue 25) ---------------------------------------------------------------------------------------------
def recording_link_deps() -> LinkDeps:
    """What `/r/{id}` and `GET /v1/recordings/{id}` read: the recording, its project, the archive (presigned GETs)."""
    from iptelefon.data.projects import project_store
    from iptelefon.data.recording_archive import S3Archive
    from iptelefon.data.recordings import RecordingStore
    from iptelefon.usecases.recordings import LinkDeps

    storage = get_storage()
    return LinkDeps(recordings=RecordingStore(storage), archive=S3Archive(), projects=project_store(storage))


def recording_copy_deps() -> CopyDeps:
    """What the copier talks to: the recording items, the archive, the PBX (its links through the PBX's guard)."""
    import time

    from iptelefon.adapters.recording_download import get_recording_fetcher
    from iptelefon.data.call_records import CallRecordStore
    from iptelefon.data.pbx_settings import get_pbx_credentials
    from iptelefon.data.projects import project_store
    from iptelefon.data.recording_archive import S3Archive
    from iptelefon.data.recordings import RecordingStore, SqsRecordingQueue
    from iptelefon.usecases.calls import connection_for
    from iptelefon.usecases.recordings import CopyDeps

    settings = get_settings()
    storage = get_storage()
    return CopyDeps(
        recordings=RecordingStore(storage),
        archive=S3Archive(),
        downloads=get_recording_fetcher(settings.pbx_network, settings.recording_max_bytes),
        projects=project_store(storage),
        calls=CallRecordStore(storage),
        pbx_connection=lambda project: connection_for(
            project, get_pbx_credentials(project.id), timeout_seconds=settings.pbx_timeout_seconds
        ),
        queue=SqsRecordingQueue(),
        clock=time.time,
    )


# -- admin and auth ----------------------------------------------------------------------------------------------------
def auth_deps() -> AuthDeps:
    """What `authenticate` reads, over this Lambda's storage client."""
    from iptelefon.data.projects import project_store
    from iptelefon.data.tokens import TokenStore
    from iptelefon.usecases.auth import AuthDeps

    storage = get_storage()
    return AuthDeps(tokens=TokenStore(storage), projects=project_store(storage))


def admin_deps() -> AdminDeps:
    """What the admin use cases change: the table through this Lambda's storage client, SSM through its SSM client."""
    from iptelefon.data.pbx_settings import ssm_provider

    settings = get_settings()
    return admin_deps_over(get_storage(), ssm_provider().client, settings.ssm_prefix, settings.pbx_network)


def admin_deps_over(storage: Storage, ssm_client: Any, ssm_prefix: str, pbx_network: PbxNetwork) -> AdminDeps:
    """The admin dependencies over given clients: the Lambda's own, or the admin CLI's target (a stage, the local
    stack), with where that target's PBX requests may go."""
    from iptelefon.data.employees import EmployeeStore
    from iptelefon.data.pbx_settings import PbxSettingsStore
    from iptelefon.data.projects import project_store
    from iptelefon.data.tokens import TokenStore
    from iptelefon.usecases.admin import AdminDeps

    return AdminDeps(
        projects=project_store(storage),
        employees=EmployeeStore(storage),
        tokens=TokenStore(storage),
        pbx_settings=PbxSettingsStore(ssm_client, ssm_prefix),
        pbx_network=pbx_network,
    )


def forget_cached_pbx_settings() -> None:
    """After an admin changed the PBX connection: this Lambda reads it from SSM again at once."""
    from iptelefon.data.pbx_settings import ssm_provider

    ssm_provider().clear_cache()


@dataclass(frozen=True)
class PbxProbe:
    """A project's PBX as the settings check asks it (implements `usecases.ports.PbxCheck`). `connection` is built
    for each request: each gets the read timeout the invocation still has room for."""

    client: PbxClient
    connection: Callable[[], PbxConnection]

    def ping(self) -> str:
        return self.client.ping(self.connection())

    def method_names(self) -> list[str]:
        return self.client.method_list(self.connection())

    def points(self) -> list[str]:
        return self.client.points(self.connection())


# -- calls (the call-starting routes; the admin API's connection check) ----------------------------------------------
def pbx_client() -> PbxClient:
    """The PBX client (one shared httpx client per warm Lambda), sending only where the stage allows."""
    from iptelefon.adapters.pbx import get_pbx_client

    return get_pbx_client(get_settings().pbx_network)


@lru_cache(maxsize=1)
def idempotency_store() -> IdempotencyStore:
    """The call routes' Idempotency-Key store (Powertools is imported when a key is first used)."""
    from iptelefon.data.idempotency_store import IdempotencyStore

    return IdempotencyStore(get_settings().idempotency_table_name)


def call_deps() -> CallDeps:
    """What starting a call talks to. Cheap: every part is cached (the storage, the PBX client, the idempotency
    store) or a small wrapper around one."""
    from iptelefon.data.attempts import AttemptStore
    from iptelefon.data.clients import ClientStore
    from iptelefon.data.employees import EmployeeStore
    from iptelefon.data.pbx_settings import get_pbx_credentials
    from iptelefon.data.rate_counters import RateCounterStore
    from iptelefon.usecases.calls import CallDeps

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


# -- call events (the events function; the admin API's endpoints and replays) -----------------------------------------
def event_deps(*, sending: bool = False) -> EventDeps:
    """What the call events' use cases talk to over this Lambda's clients; `sending`: with the HTTP sender."""
    from iptelefon.data.pbx_settings import ssm_provider

    settings = get_settings()
    return event_deps_over(
        get_storage(),
        ssm_provider().client,
        settings.ssm_prefix,
        settings.pbx_network,
        queue_url=settings.event_queue_url,
        sending=sending,
        time_scale=settings.events_time_scale,
    )


@lru_cache(maxsize=2)
def _sending_secrets(ssm_client: Any, ssm_prefix: str) -> EndpointSecretStore:
    """The delivery's secrets, read once a minute per endpoint by a warm Lambda (the admin's are read each time)."""
    from iptelefon.data.endpoint_secrets import EndpointSecretStore

    return EndpointSecretStore(ssm_client, ssm_prefix, cache_seconds=SECRETS_CACHE_SECONDS)


def event_deps_over(
    storage: Storage,
    ssm_client: Any,
    ssm_prefix: str,
    network: PbxNetwork,
    *,
    queue_url: str | None,
    sqs_client: Any = None,
    sending: bool = False,
    time_scale: float = 1.0,
) -> EventDeps:
    """The same over given clients (the admin CLI's target)."""
    from iptelefon.data.call_events import CallEventStore
    from iptelefon.data.delivery_queue import SqsDeliveryQueue
    from iptelefon.data.endpoint_secrets import EndpointSecretStore
    from iptelefon.usecases.call_events import EventDeps

    sender = None
    if sending:
        from iptelefon.adapters.event_sender import get_event_sender

        sender = get_event_sender(network)
    return EventDeps(
        events=CallEventStore(storage),
        secrets=_sending_secrets(ssm_client, ssm_prefix) if sending else EndpointSecretStore(ssm_client, ssm_prefix),
        queue=SqsDeliveryQueue(queue_url, sqs_client),
        sender=sender,
        network=network,
        time_scale=time_scale,
        run_all=side_by_side,
    )


@lru_cache(maxsize=1)
def _writers() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=10, thread_name_prefix="writes")


def side_by_side(calls: list[Callable[[], None]]) -> None:
    """Independent storage writes at once (an event's deliveries to each endpoint), each within the invocation's
    time budget; the first failure is raised once all have ended."""
    runs = [_writers().submit(contextvars.copy_context().run, call) for call in calls]
    for run in runs:
        run.result()
