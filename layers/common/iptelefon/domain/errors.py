"""Domain errors. Each carries its HTTP status and a stable error code; `api.py` maps them to answers in one place.

Messages are shown to API callers: never put a secret, a token or a PBX password in one.
"""

from __future__ import annotations

from typing import Any, Self


class DomainError(Exception):
    status_code = 500
    code = "internal_error"

    def __init__(
        self, message: str, *, details: list[dict[str, Any]] | None = None, retry_after_seconds: int | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or []
        # Sent as the Retry-After header: when asking again may succeed (429, 503, 409 while in progress).
        self.retry_after_seconds = retry_after_seconds

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"error": self.code, "message": self.message}
        if self.details:
            body["details"] = self.details
        return body


class InvalidInput(DomainError):
    status_code = 400
    code = "validation_error"

    @classmethod
    def for_field(cls, field: str, message: str) -> Self:
        """A 400 naming the field: {"details": [{"field": ..., "message": ...}]}."""
        return cls(f"{field}: {message}", details=[{"field": field, "message": message}])


class InvalidPhone(InvalidInput):
    code = "invalid_phone"


class Unauthorized(DomainError):
    status_code = 401
    code = "unauthorized"


class Forbidden(DomainError):
    status_code = 403
    code = "forbidden"


class CallsDisabled(Forbidden):
    code = "calls_disabled"


class CountryNotAllowed(Forbidden):
    code = "country_not_allowed"


class NumberNotAllowed(Forbidden):
    """Toll-fraud guard: a kind of line the project does not call (premium rate, shared cost, personal, VoIP, …)."""

    code = "number_not_allowed"


class PhoneNotOfClient(Forbidden):
    """A card call names a number that is none of the client's phones (the card calls its client, nobody else)."""

    code = "phone_not_of_client"


class NotFound(DomainError):
    status_code = 404
    code = "not_found"


class Conflict(DomainError):
    status_code = 409
    code = "conflict"


class PayloadTooLarge(DomainError):
    status_code = 413
    code = "payload_too_large"


class RateLimited(DomainError):
    status_code = 429
    code = "rate_limited"

    def __init__(self, message: str, *, retry_after_seconds: int) -> None:
        super().__init__(message, retry_after_seconds=retry_after_seconds)


class PbxError(DomainError):
    """The PBX answered with an error (`result != 1`), a 5xx or something that is not its JSON."""

    status_code = 502
    code = "pbx_error"


class PbxRefused(PbxError):
    """The PBX certainly did not act on the request: it refused it, or the request never reached it (still a 502).

    After any other PBX failure a call may be ringing."""


class PbxReplyUnreadable(PbxError):
    """The request reached the PBX, and its reply is none of the shapes known (HTML with 200, JSON of another shape,
    nothing): the PBX may have acted on it. A call-starting use case records the attempt as `unknown` (202)."""


class PbxTimeout(DomainError):
    """No answer from the PBX in time. The call may or may not have started: never retried."""

    status_code = 504
    code = "pbx_timeout"


class StorageUnavailable(DomainError):
    status_code = 503
    code = "storage_unavailable"

    def __init__(self, message: str = "storage is unavailable, retry later", *, retry_after_seconds: int = 2) -> None:
        super().__init__(message, retry_after_seconds=retry_after_seconds)


class StorageRejected(DomainError):
    """DynamoDB refused the request itself (ValidationException): a defect of ours, logged with DynamoDB's reason."""

    status_code = 500
    code = "storage_rejected"

    def __init__(self, message: str = "the data could not be stored; the request was not completed") -> None:
        super().__init__(message)


class PhoneShared(DomainError):
    """One phone already stands for the most clients its index item may list (see `clients.MAX_CLIENTS_PER_PHONE`)."""

    status_code = 409
    code = "phone_shared_too_widely"


# -- what an Idempotency-Key store says (`usecases.ports.IdempotentRunner`); the rule (`usecases.idempotency`) answers
class IdempotencyKeyInProgress(Exception):
    """The key's first request is still running."""


class IdempotencyKeyReused(Exception):
    """The key came before with another request."""


class IdempotencyStoreFailed(Exception):
    """The key's record could not be read or written (before the work ran, or after it, when remembering its answer)."""
