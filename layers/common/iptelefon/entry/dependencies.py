"""The composition root: what each use case receives, built once per warm Lambda (cached factories).

A handler calls a factory and passes the result (and the Lambda context, where a use case needs it) to its use case.
Each factory is cached on the storage it is built on: when `get_storage()` is rebuilt (its cache cleared), so is it.
"""

from __future__ import annotations

import time
from functools import lru_cache

from iptelefon.data import attempts as attempt_items
from iptelefon.data.call_records import CallRecordStore
from iptelefon.data.clients import ClientStore
from iptelefon.data.gateway import Storage, get_storage
from iptelefon.data.inbox import SqsInbox
from iptelefon.data.pbx_settings import get_pbx_credentials
from iptelefon.domain.models import CallAttempt
from iptelefon.usecases.reads import ReadDependencies
from iptelefon.usecases.webhook import WebhookDependencies


# -- webhook and reads -------------------------------------------------------------------------------------------------
class AttemptItems:
    """`usecases.ports.Attempts` over the attempt functions of `data.attempts`, for the webhook's and the reads' part.

    Only the methods these use; a stand-in until `data.attempts.AttemptStore` (the calls' part) takes its place.
    """

    def __init__(self, storage: Storage) -> None:
        self.storage = storage

    def get(self, project_id: str, attempt_id: str) -> CallAttempt | None:
        item = attempt_items.get_attempt(self.storage, project_id, attempt_id)
        return CallAttempt.model_validate(item) if item else None

    def latest_pending(
        self, project_id: str, phone: str, *, pbx_call_id: str | None = None, now: float | None = None
    ) -> CallAttempt | None:
        item = attempt_items.latest_pending_attempt(self.storage, project_id, phone, pbx_call_id=pbx_call_id, now=now)
        return CallAttempt.model_validate(item) if item else None

    def link(self, project_id: str, attempt_id: str, call_key: str, client_id: str) -> None:
        attempt_items.link_attempt(self.storage, project_id, attempt_id, call_key, client_id)

    def start(self, project_id: str, attempt: CallAttempt, *, now: float, key_scope: str | None) -> bool:
        raise NotImplementedError("the calls' part: data.attempts.AttemptStore")

    def finish(
        self, project_id: str, attempt: CallAttempt, *, pending: bool, key_scope: str | None, now: float
    ) -> None:
        raise NotImplementedError("the calls' part: data.attempts.AttemptStore")


def webhook_dependencies() -> WebhookDependencies:
    return _webhook_dependencies(get_storage())


@lru_cache(maxsize=1)
def _webhook_dependencies(storage: Storage) -> WebhookDependencies:
    return WebhookDependencies(
        projects=storage,  # until data.projects.ProjectStore (the admin's part) holds the project reads
        clients=ClientStore(storage),
        calls=CallRecordStore(storage),
        attempts=AttemptItems(storage),
        pbx_credentials=get_pbx_credentials,
        inbox=SqsInbox(),
        clock=time.time,
    )


def read_dependencies() -> ReadDependencies:
    return _read_dependencies(get_storage())


@lru_cache(maxsize=1)
def _read_dependencies(storage: Storage) -> ReadDependencies:
    return ReadDependencies(
        clients=ClientStore(storage), calls=CallRecordStore(storage), attempts=AttemptItems(storage)
    )
