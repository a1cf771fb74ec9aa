"""The Idempotency-Key rule of the call routes (the header is optional). The record's key is a hash of (project id,
route, key): two projects or two routes never share a key. The request itself is checked too: the same key with
another request is a 409. A repeat within 24 h gets:
- the first answer when it was a success (202, or 200 for the `app` method), the 202 `unknown` of a PBX reply that
  could not be read included;
- the same 504 / 502, without a PBX request, when the first request may have started a call (timeout, connection
  broken after sending, HTTP 5xx): retrying it could ring the client twice, so that takes a new key (a deliberate
  "call again");
- a fresh try when nothing was started: the PBX refused (`result != 1`, `code: error`, HTTP 4xx) or was
  unreachable, or the request was refused before the PBX (400, 403, 404, 429): the store forgets the record of a
  piece of work that raised;
- 409 while the first request is still in flight: retry after a few seconds to get its answer.

The store (`ports.IdempotentRunner`, Powertools in `data.idempotency_store`) is handed in, with the Lambda context.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from iptelefon.domain.answers import CALL_ANSWER_ORDER
from iptelefon.domain.errors import (
    Conflict,
    DomainError,
    IdempotencyKeyInProgress,
    IdempotencyKeyReused,
    IdempotencyStoreFailed,
    InvalidInput,
    PbxError,
    PbxTimeout,
    StorageUnavailable,
)
from iptelefon.domain.hashes import sha256_hex
from iptelefon.platform.observability import logger
from iptelefon.usecases.ports import IdempotentRunner, Outcome

IDEMPOTENCY_HEADER = "Idempotency-Key"
# Printable ASCII (space included), 1-200 characters: a UUID, a bot's message id, an order number.
_IDEMPOTENCY_KEY = re.compile(r"[\x20-\x7e]{1,200}")
# PBX failures after which a call may be ringing: a repeat with the same key gets the same answer.
_REMEMBERED_FAILURES: dict[str, type[DomainError]] = {PbxTimeout.code: PbxTimeout, PbxError.code: PbxError}


def checked_idempotency_key(value: str | None) -> str | None:
    if value is None:
        return None
    if not _IDEMPOTENCY_KEY.fullmatch(value) or not value.strip():
        raise InvalidInput.for_field(IDEMPOTENCY_HEADER, "must be 1-200 printable ASCII characters, e.g. a UUID")
    return value


def failure(error: PbxError | PbxTimeout, message: str | None = None) -> Outcome:
    """A PBX failure after which a call may be ringing, as an outcome the store remembers."""
    return {"status": error.status_code, "error": error.code, "message": message or error.message}


def once(
    runner: IdempotentRunner,
    lambda_context: Any | None,
    *,
    project_id: str,
    route: str,
    idempotency_key: str | None,
    request: dict[str, Any],
    work: Callable[[str | None], Outcome],
) -> tuple[int, dict[str, Any]]:
    """Run `work` (once per Idempotency-Key, when there is one) and turn its outcome into (status, body).

    `work` gets the key's scope (a hash of route and key) to mark the key as having started a call. An outcome is
    {"status", "body"} (a success) or a `failure`; a work that raises is not remembered."""
    key = checked_idempotency_key(idempotency_key)
    if key is None:
        return _answer(work(None))
    scope = {"project_id": project_id, "route": route, "key": key, "request": request}
    key_scope = sha256_hex(f"{route}\n{key}")
    produced: list[Outcome] = []

    def run() -> Outcome:
        produced.append(work(key_scope))
        return produced[-1]

    try:
        outcome = runner.run_once(scope, run, lambda_context=lambda_context)
    except IdempotencyKeyInProgress:
        raise Conflict(
            "a request with this Idempotency-Key is still in progress: retry in a few seconds to get its answer",
            retry_after_seconds=2,
        ) from None
    except IdempotencyKeyReused:
        raise Conflict(
            "this Idempotency-Key was already used with a different request: use a new key for a new call"
        ) from None
    except IdempotencyStoreFailed as error:
        logger.warning("idempotency store failed", extra={"error": str(error), "after_work": bool(produced)})
        if produced:
            # The work ran (a call may be ringing) and only remembering its answer failed: the answer is still true.
            return _answer(produced[-1])
        raise StorageUnavailable() from error
    return _answer(outcome)


def _answer(outcome: Outcome) -> tuple[int, dict[str, Any]]:
    if "error" in outcome:
        raise _REMEMBERED_FAILURES[str(outcome["error"])](str(outcome["message"]))
    # The idempotency store keeps JSON with sorted keys: one fixed order makes a repeat byte for byte the first answer.
    body: dict[str, Any] = outcome["body"]
    rank = {name: i for i, name in enumerate(CALL_ANSWER_ORDER)}
    return int(outcome["status"]), {name: body[name] for name in sorted(body, key=lambda n: (rank.get(n, 99), n))}
