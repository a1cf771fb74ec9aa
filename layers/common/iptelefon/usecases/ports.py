"""What the use cases talk to, as they see it: structural Protocols, so the data access and the adapters implement
them without importing this module (the import-linter contract in pyproject.toml forbids use cases to import `data`
or `adapters`). A handler hands the real ones in (`entry.dependencies`); a unit test hands in-memory fakes
(`tests/fakes.py`).
"""

from __future__ import annotations

from typing import Any, Protocol

from iptelefon.domain.models import CallAttempt, Project


class Clock(Protocol):
    def __call__(self) -> float:
        """Seconds since the epoch (`time.time`)."""
        ...


class Projects(Protocol):
    """Projects and the webhook-secret lookup (`data.projects`)."""

    def get_project(self, project_id: str) -> Project | None: ...

    def get_project_cached(self, project_id: str) -> Project | None: ...

    def find_webhook_secret(self, secret_sha256: str) -> dict[str, Any] | None: ...


class Attempts(Protocol):
    """Call attempts (`data.attempts`): stored before the PBX request, completed by the webhook."""

    def start(self, project_id: str, attempt: CallAttempt, *, now: float, key_scope: str | None) -> bool:
        """Store a `starting` attempt; False (nothing stored) when `key_scope`'s Idempotency-Key started a call
        before."""
        ...

    def finish(
        self, project_id: str, attempt: CallAttempt, *, pending: bool, key_scope: str | None, now: float
    ) -> None: ...

    def get(self, project_id: str, attempt_id: str) -> CallAttempt | None: ...

    def latest_pending(
        self, project_id: str, phone: str, *, pbx_call_id: str | None = None, now: float | None = None
    ) -> CallAttempt | None: ...

    def link(self, project_id: str, attempt_id: str, call_key: str, client_id: str) -> None: ...
