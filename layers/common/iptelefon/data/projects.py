"""Projects and the webhook-secret lookup, over the storage gateway (implements `usecases.ports.Projects`).

Keys (MainTable):
    PROJECT#<project_id> / PROJECT        the project's settings (`domain.models.Project`)
    WEBHOOK#<sha256(secret)> / WEBHOOK    webhook secret -> project_id; a rotated one also `valid_until` (epoch s)
                                          and `expires_at` (TTL, a day later)
    PROJECT#<project_id> / WEBHOOKREF#<sha256(secret)>   the project's listing of its lookups (written with each), so
                                          that a rotation with no grace period can end every earlier one
"""

from __future__ import annotations

import time
from contextlib import suppress
from functools import lru_cache
from typing import Any

from iptelefon.data.gateway import ConditionFailed, Storage, Write, get_storage, project_pk, put, update
from iptelefon.domain.errors import Conflict
from iptelefon.domain.hashes import sha256_hex
from iptelefon.domain.models import Project

PROJECT_CACHE_SECONDS = 60
SECRET_IN_USE = "secret in use"  # noqa: S105 - the label of a lookup's "not taken yet" condition
# Said without naming whose: no answer may tell that another project uses a secret.
SECRET_TAKEN = "this secret cannot be used: choose another one (ask the Iptelefon manager for a new key)"  # noqa: S105
WEBHOOK_REF = "WEBHOOKREF#"
# How long an ended secret's lookup stays after its `valid_until` before TTL removes it.
ENDED_LOOKUP_KEPT_SECONDS = 86_400


def webhook_pk(secret_hash: str) -> str:
    return f"WEBHOOK#{secret_hash}"


def webhook_lookup_item(secret_hash: str, project_id: str) -> dict[str, Any]:
    """Webhook secret (by its sha256) -> project: how the webhook finds its project with one GetItem."""
    return {"pk": webhook_pk(secret_hash), "sk": "WEBHOOK", "project_id": project_id}


def _webhook_ref(project_id: str, secret_hash: str) -> Write:
    return put({"pk": project_pk(project_id), "sk": f"{WEBHOOK_REF}{secret_hash}", "type": "webhook_ref"})


def _project_item(project: Project) -> dict[str, Any]:
    return {"pk": project_pk(project.id), "sk": "PROJECT", "type": "project", **project.model_dump(mode="json")}


class ProjectStore:
    def __init__(self, storage: Storage) -> None:
        self.storage = storage
        self._cached: dict[str, tuple[float, Project]] = {}

    def create_project(self, project: Project, webhook_secret: str) -> None:
        """Project item plus its webhook lookup item (by the secret's sha256), both or neither."""
        lookup_item = webhook_lookup_item(sha256_hex(webhook_secret), project.id)
        try:
            self.storage.transact(
                [
                    put(_project_item(project), only_if="attribute_not_exists(pk)", label="project exists"),
                    put(lookup_item, only_if="attribute_not_exists(pk)", label=SECRET_IN_USE),
                    _webhook_ref(project.id, sha256_hex(webhook_secret)),
                ]
            )
        except ConditionFailed as failed:
            if "project exists" in failed.failed:
                raise Conflict(f"project {project.id} already exists") from None
            raise Conflict(SECRET_TAKEN) from None

    def update_project(self, project: Project) -> None:
        self.storage.write(put(_project_item(project), only_if="attribute_exists(pk)"))

    def get_project(self, project_id: str) -> Project | None:
        item = self.storage.get(project_pk(project_id), "PROJECT")
        return Project.model_validate(item) if item else None

    def list_projects(self) -> list[Project]:
        """Every project, by id (a scan of the table: the admin CLI's `project list`)."""
        items = self.storage.scan_sort_key("PROJECT")
        return sorted((Project.model_validate(item) for item in items), key=lambda project: project.id)

    def get_project_cached(self, project_id: str) -> Project | None:
        """A warm Lambda reads a project at most once a minute (settings change rarely; webhooks come often)."""
        now = time.monotonic()
        cached = self._cached.get(project_id)
        if cached and now - cached[0] < PROJECT_CACHE_SECONDS:
            return cached[1]
        project = self.get_project(project_id)
        if project is not None:
            self._cached[project_id] = (now, project)
        return project

    def find_webhook_secret(self, secret_sha256: str) -> dict[str, Any] | None:
        """The lookup item of a webhook secret: `project_id`, and `valid_until` (epoch seconds) for a rotated one."""
        return self.storage.get(webhook_pk(secret_sha256), "WEBHOOK")

    def rotate_webhook_secret(
        self,
        project_id: str,
        old_hash: str,
        new_hash: str,
        *,
        old_valid_until: int,
        new_is_token: bool = False,
        cut_earlier: bool = False,
    ) -> None:
        """The new secret's lookup, and the old one kept until `old_valid_until` (then TTL removes it a day later).
        `new_is_token`: the new one is a random webhook token, whose hash the project item keeps (same transaction).
        `cut_earlier`: every earlier lookup of the project still in its grace period ends at `old_valid_until` too.

        Repeatable: a rotation that stopped half-way (SSM not yet updated) can be run again with the same secret."""
        writes = [
            put(
                webhook_lookup_item(new_hash, project_id),
                only_if="attribute_not_exists(pk) OR project_id = :pid",
                values={":pid": project_id},
                label=SECRET_IN_USE,
            ),
            _webhook_ref(project_id, new_hash),
        ]
        if new_is_token:
            writes.append(
                update(
                    project_pk(project_id),
                    "PROJECT",
                    "SET webhook_token_sha256 = :token",
                    only_if="attribute_exists(pk)",
                    values={":token": new_hash},
                    label="project exists",
                )
            )
        if old_hash != new_hash:
            writes.append(_webhook_ref(project_id, old_hash))  # a project made before the listing has none of it
            writes.append(
                _lookup_ended(
                    old_hash, project_id, old_valid_until, "project_id = :pid", "old secret not this project's"
                )
            )
        try:
            self.storage.transact(writes)
        except ConditionFailed as failed:
            if SECRET_IN_USE in failed.failed:
                raise Conflict(SECRET_TAKEN) from None
            raise Conflict(f"project {project_id}'s current secret has no webhook lookup") from None
        if cut_earlier:
            self._end_earlier_lookups(project_id, keep=new_hash, until=old_valid_until)

    def _end_earlier_lookups(self, project_id: str, *, keep: str, until: int) -> None:
        for ref in self.storage.query(project_pk(project_id), WEBHOOK_REF):
            secret_hash = str(ref["sk"]).removeprefix(WEBHOOK_REF)
            if secret_hash == keep:
                continue
            with suppress(ConditionFailed):  # gone already (TTL), or ended earlier
                only_if = "project_id = :pid AND (attribute_not_exists(valid_until) OR valid_until > :until)"
                self.storage.write(_lookup_ended(secret_hash, project_id, until, only_if))


@lru_cache(maxsize=1)
def project_store(storage: Storage) -> ProjectStore:
    """One store per storage client, so one per warm Lambda: `get_project_cached` keeps its cache between requests
    (and a test that swaps the storage client gets a fresh store)."""
    return ProjectStore(storage)


def get_project_store() -> ProjectStore:
    return project_store(get_storage())


def _lookup_ended(secret_hash: str, project_id: str, until: int, only_if: str, label: str = "") -> Write:
    """A webhook secret's lookup valid until `until` (epoch seconds), removed by TTL a day later."""
    return update(
        webhook_pk(secret_hash),
        "WEBHOOK",
        "SET valid_until = :until, expires_at = :gone",
        only_if=only_if,
        values={":until": until, ":gone": until + ENDED_LOOKUP_KEPT_SECONDS, ":pid": project_id},
        label=label,
    )
