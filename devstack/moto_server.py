"""moto's server with DynamoDB's writes made atomic, as they are on AWS. Same arguments as `python -m moto.server`.

moto checks a write's condition and then writes, without a lock: two concurrent requests can both pass
`attribute_not_exists` and both "create" the item, which DynamoDB never allows. The local stack's race tests need
DynamoDB's guarantee, so every item operation runs under one lock here.

moto also makes each transaction roll back by deep-copying every table it touches first: its cost grows with the table
(seconds per webhook after a long fuzz run), while DynamoDB's does not. Under the lock only the transaction's own
items can change, so here it keeps a copy of those items instead and puts them back if the transaction fails.

moto's query reads, sorts and compares every item of the table to find one partition's (a GSI's too): its cost also
grows with the table, a local stack with 10,000 calls spent most of its time sorting the table. Here a query is handed
only the items that can match (the partition's, or those whose index hash key has the asked value), and moto goes on
filtering, sorting and paging them as before.

And moto ignores a transaction's `ClientRequestToken`. DynamoDB does not: a TransactWriteItems repeated with the same
token within 10 minutes succeeds without running again. botocore sends a token with every transaction and repeats it on
its own retries, so a retry after a read timeout (the first attempt did land) must not meet its own writes as a failed
condition: here it does not either.

Run: python -m devstack.moto_server -H 127.0.0.1 -p 5000
"""

from __future__ import annotations

import copy
import functools
import inspect
import json
import threading
import time
import types
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
    """Run moto's DynamoDB item operations one at a time (one shared lock), transactions rolled back item by item;
    returns a function that undoes both."""
    from moto.dynamodb import models, responses

    backend = models.DynamoDBBackend
    lock = threading.RLock()  # reentrant: batch_write_item and transactions call put_item/delete_item inside
    originals = {name: backend.__dict__.get(name) for name in ATOMIC_OPERATIONS}
    for name in ATOMIC_OPERATIONS:
        original = getattr(backend, name)
        if name == "transact_write_items":
            original = _with_item_undo(original)

        def locked(*args: Any, __original: Callable[..., Any] = original, **kwargs: Any) -> Any:
            with lock:
                return __original(*args, **kwargs)

        setattr(backend, name, functools.wraps(original)(locked))
    models.copy = _copy_except_tables(models.Table)  # type: ignore[assignment]
    table_query, all_items = models.Table.query, models.Table.all_items
    models.Table.query = _given_only_candidates(table_query)  # type: ignore[method-assign]
    models.Table.all_items = _candidates_while_querying(all_items)  # type: ignore[method-assign,assignment]
    handler = responses.DynamoHandler
    original_handler = handler.__dict__["transact_write_items"]
    handler.transact_write_items = _honouring_request_tokens(original_handler, lock)  # type: ignore[method-assign]

    def undo() -> None:
        handler.transact_write_items = original_handler  # type: ignore[method-assign]
        models.copy = copy
        models.Table.query, models.Table.all_items = table_query, all_items  # type: ignore[method-assign]
        for name, original in originals.items():
            if original is None:  # inherited: drop the override to uncover the base class's method again
                delattr(backend, name)
            else:
                setattr(backend, name, original)

    return undo


TOKEN_WINDOW_SECONDS = 600  # DynamoDB keeps a transaction's ClientRequestToken this long


def _honouring_request_tokens(transact: Callable[..., Any], lock: Any) -> Callable[..., Any]:
    """The DynamoDB handler's TransactWriteItems with DynamoDB's idempotency tokens: the same token and request again
    within the window answers as the first time did (it succeeded) without running; the same token with another
    request is IdempotentParameterMismatchException."""
    from moto.core.exceptions import JsonRESTError

    done: dict[str, tuple[float, str, Any]] = {}  # token -> (when, request, answer) of a transaction that succeeded

    @functools.wraps(transact)
    def transact_write_items(handler: Any) -> Any:
        token = handler.body.get("ClientRequestToken")
        request = json.dumps(handler.body.get("TransactItems"), sort_keys=True)
        with lock:  # the same lock as the writes: a retry waits for its first attempt, then sees it done
            now = time.monotonic()
            when, first_request, answer = done.get(token, (0.0, "", None)) if token else (0.0, "", None)
            if token and now - when < TOKEN_WINDOW_SECONDS:
                if request != first_request:
                    raise JsonRESTError(
                        "IdempotentParameterMismatchException",
                        "The request uses the same client token as a previous, but non-identical request.",
                    )
                return answer
            answer = transact(handler)
            if token:
                done[token] = (now, request, answer)
            return answer

    return transact_write_items


_querying = threading.local()  # .candidates: the items the current thread's query may match


def _given_only_candidates(query: Callable[..., Any]) -> Callable[..., Any]:
    """moto's Table.query, its `all_items()` narrowed (for this thread only) to the items that can match."""
    signature = inspect.signature(query)

    @functools.wraps(query)
    def partition_query(table: Any, *args: Any, **kwargs: Any) -> Any:
        asked = signature.bind(table, *args, **kwargs).arguments
        _querying.candidates = _candidates(table, asked["hash_key"], asked.get("index_name"), asked)
        try:
            return query(table, *args, **kwargs)
        finally:
            _querying.candidates = None

    return partition_query


def _candidates_while_querying(all_items: Callable[[Any], list[Any]]) -> Callable[[Any], list[Any]]:
    @functools.wraps(all_items)
    def candidates_or_all(table: Any) -> list[Any]:
        candidates = getattr(_querying, "candidates", None)
        return all_items(table) if candidates is None else candidates

    return candidates_or_all


def _candidates(table: Any, hash_key: Any, index_name: str | None, asked: dict[str, Any]) -> list[Any] | None:
    """The items a query can match: a base-table query's partition; for an index, the items whose (first) index hash
    attribute equals the asked value; None (every item) when the asked value is not plain to see."""
    if not index_name:
        partition = table.items.get(hash_key) if hash_key is not None else None
        if partition is None:
            return []
        return list(partition.values()) if table.range_key_attr else [partition]
    index = next((i for i in table.all_indexes() if i.name == index_name), None)
    hash_attrs = [key["AttributeName"] for key in index.schema if key["KeyType"] == "HASH"] if index else []
    conditions = dict(asked.get("hash_key_conditions") or [])
    if hash_attrs and hash_attrs[0] in conditions:
        attr, value = hash_attrs[0], conditions[hash_attrs[0]]
    elif len(hash_attrs) == 1 and hash_key is not None:
        attr, value = hash_attrs[0], hash_key
    else:
        return None
    return [
        item
        for partition in table.items.values()
        for item in (partition.values() if table.range_key_attr else [partition])
        if (found := item.attrs.get(attr)) is not None and found == value
    ]


def _copy_except_tables(table_class: type) -> types.SimpleNamespace:
    """The `copy` module as moto's DynamoDB backend sees it: a whole table is not copied (its rollback copy); every
    other deep copy (an item before an update) is made as usual."""

    def deepcopy(value: Any, memo: dict[int, Any] | None = None) -> Any:
        return value if isinstance(value, table_class) else copy.deepcopy(value, memo)

    return types.SimpleNamespace(deepcopy=deepcopy, copy=copy.copy)


def _with_item_undo(transact: Callable[..., None]) -> Callable[..., None]:
    """moto's transact_write_items, rolled back by restoring copies of the items it touches."""

    @functools.wraps(transact)
    def transact_write_items(backend: Any, transact_items: list[dict[str, Any]]) -> None:
        before = [_snapshot(backend, operation) for item in transact_items for operation in item.values()]
        try:
            transact(backend, transact_items)
        except Exception:
            for saved in before:
                if saved is not None:
                    _restore(*saved)
            raise

    return transact_write_items


def _snapshot(backend: Any, operation: dict[str, Any]) -> tuple[Any, Any, Any, Any] | None:
    """(table, hash key, range key, a copy of the item or None) for one operation; None when the operation is too
    malformed to name an item (moto refuses it before writing anything)."""
    from moto.dynamodb.models.dynamo_type import DynamoType

    try:
        table = backend.get_table(operation["TableName"])
        key = operation.get("Key") or operation["Item"]
        hash_key = DynamoType(key[table.hash_key_attr])
        range_key = DynamoType(key[table.range_key_attr]) if table.range_key_attr else None
        return table, hash_key, range_key, copy.deepcopy(table.get_item(hash_key, range_key))
    except Exception:
        return None


def _restore(table: Any, hash_key: Any, range_key: Any, item: Any) -> None:
    if range_key is None:
        if item is None:
            table.items.pop(hash_key, None)
        else:
            table.items[hash_key] = item
    elif item is None:
        table.items[hash_key].pop(range_key, None)
    else:
        table.items[hash_key][range_key] = item


def main(argv: list[str] | None = None) -> None:
    import logging

    from moto.server import main as moto_main

    make_dynamodb_atomic()
    # werkzeug logs a line per request (a tenth of the server's time under a burst); moto.log keeps warnings and errors
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    moto_main(argv)


if __name__ == "__main__":
    main()
