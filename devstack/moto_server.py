"""moto's server with DynamoDB's writes made atomic, as they are on AWS. Same arguments as `python -m moto.server`.

moto checks a write's condition and then writes, without a lock: two concurrent requests can both pass
`attribute_not_exists` and both "create" the item, which DynamoDB never allows. The local stack's race tests need
DynamoDB's guarantee, so every item operation runs under one lock here.

Run: python -m devstack.moto_server -H 127.0.0.1 -p 5000
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any

ATOMIC_OPERATIONS = (
    "put_item",
    "update_item",
    "delete_item",
    "get_item",
    "query",
    "transact_write_items",
    "batch_write_item",
)


def make_dynamodb_atomic() -> Callable[[], None]:
    """Run moto's DynamoDB item operations one at a time (one shared lock); returns a function that undoes it."""
    from moto.dynamodb.models import DynamoDBBackend

    lock = threading.RLock()  # reentrant: batch_write_item and transactions call put_item/delete_item inside
    originals = {name: DynamoDBBackend.__dict__.get(name) for name in ATOMIC_OPERATIONS}
    for name in ATOMIC_OPERATIONS:
        original = getattr(DynamoDBBackend, name)

        def locked(*args: Any, __original: Callable[..., Any] = original, **kwargs: Any) -> Any:
            with lock:
                return __original(*args, **kwargs)

        setattr(DynamoDBBackend, name, functools.wraps(original)(locked))

    def undo() -> None:
        for name, original in originals.items():
            if original is None:  # inherited: drop the override to uncover the base class's method again
                delattr(DynamoDBBackend, name)
            else:
                setattr(DynamoDBBackend, name, original)

    return undo


def main(argv: list[str] | None = None) -> None:
    from moto.server import main as moto_main

    make_dynamodb_atomic()
    moto_main(argv)


if __name__ == "__main__":
    main()
