"""The Idempotency-Key store of the call routes: Powertools Idempotency (`idempotent_function` over a
`DynamoDBPersistenceLayer` on the idempotency table). What is remembered and how a repeat is answered is the rule's
(`usecases.idempotency`); this module only runs a piece of work at most once per key.

Powertools is imported on first use only, i.e. when a request carries an Idempotency-Key (~40 ms of cold start saved
for the others); the table's client is built then too.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cached_property
from typing import TYPE_CHECKING, Any

from iptelefon.data import gateway
from iptelefon.domain.errors import IdempotencyKeyInProgress, IdempotencyKeyReused, IdempotencyStoreFailed

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.idempotency import IdempotencyConfig

IDEMPOTENCY_TTL_SECONDS = 24 * 3600
IDEMPOTENCY_KEY_PREFIX = "calls"

Outcome = dict[str, Any]


class IdempotencyStore:
    """`ports.IdempotentRunner` on one table. The record's key is a hash of `scope`'s (project_id, route, key); its
    `request` is checked too (the same key with another request raises IdempotencyValidationError)."""

    def __init__(self, table_name: str) -> None:
        self._table_name = table_name

    def run_once(self, scope: dict[str, Any], work: Callable[[], Outcome], *, lambda_context: Any | None) -> Outcome:
        if lambda_context is not None:
            # An in-flight record expires with this invocation: a crashed one does not block the key for long.
            self._config.register_lambda_context(lambda_context)
        from aws_lambda_powertools.utilities.idempotency.exceptions import (
            IdempotencyAlreadyInProgressError,
            IdempotencyInconsistentStateError,
            IdempotencyPersistenceLayerError,
            IdempotencyValidationError,
        )

        # Powertools' answers become the domain's (`work`'s own errors pass through: Powertools forgets the key then).
        try:
            return self._runner(scope=scope, work=work)
        except IdempotencyAlreadyInProgressError:
            raise IdempotencyKeyInProgress() from None
        except IdempotencyValidationError:
            raise IdempotencyKeyReused() from None
        except (IdempotencyPersistenceLayerError, IdempotencyInconsistentStateError) as error:
            raise IdempotencyStoreFailed(type(error).__name__) from error

    @cached_property
    def _config(self) -> IdempotencyConfig:
        from aws_lambda_powertools.utilities.idempotency import IdempotencyConfig

        return IdempotencyConfig(
            event_key_jmespath="[project_id, route, key]",
            payload_validation_jmespath="request",
            raise_on_no_idempotency_key=True,
            expires_after_seconds=IDEMPOTENCY_TTL_SECONDS,
            hash_function="sha256",
        )

    @cached_property
    def _runner(self) -> Callable[..., Outcome]:
        from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer, idempotent_function

        persistence = DynamoDBPersistenceLayer(table_name=self._table_name, boto3_client=gateway.dynamodb_client())
        runner: Callable[..., Outcome] = idempotent_function(
            _run_once,
            data_keyword_argument="scope",
            persistence_store=persistence,
            config=self._config,
            key_prefix=IDEMPOTENCY_KEY_PREFIX,
        )
        return runner

    def prepare(self) -> None:
        """Build the Powertools runner now (a test that attaches the table's client to a server it controls)."""
        _ = self._runner


def _run_once(*, scope: dict[str, Any], work: Callable[[], Outcome]) -> Outcome:
    """What Powertools runs at most once per `scope` key; `scope` itself is only hashed."""
    return work()
