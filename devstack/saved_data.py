"""The local stack's data across restarts: `make run` saves the tables' items and the SSM parameters into
<state-dir>/saved-data.json when it stops, and loads them into the new moto when it starts (`make run FRESH=1`: not).

Why not moto's own means: moto keeps state in memory only; its recorder (`/moto-api/recorder/…`) replays every request
ever made, which grows with each webhook and re-runs conditions against another clock. A snapshot of what is stored
is as large as the data and loads in one pass.

The file also keeps the demo tokens the banner prints (they are stored only as hashes): the same tokens work after a
restart. It sits next to stack.json, which holds them in clear already. Messages waiting in the SQS queues are not
kept. Written on a clean stop (Ctrl-C, SIGTERM, SIGHUP, a child that died); a stack killed with SIGKILL saves nothing.
The archived call recordings (issue 25) are saved as files, <state-dir>/saved-recordings/<bucket>/<key>, beside it.
"""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path
from typing import Any

SAVED_DATA = "saved-data.json"
SAVED_OBJECTS = "saved-recordings"
VERSION = 1
BATCH_WRITE_ITEMS = 25  # DynamoDB's BatchWriteItem limit


def save(path: Path, *, dynamodb: Any, ssm: Any, tables: list[str], ssm_prefix: str, demo: dict[str, Any]) -> int:
    """Every item of `tables` and every parameter under `ssm_prefix` into `path` (replaced whole, never half-written).
    Returns the number of items saved."""
    items = {table: _scan(dynamodb, table) for table in tables}
    parameters = [
        {"Name": p["Name"], "Type": p["Type"], "Value": p["Value"]}
        for page in ssm.get_paginator("get_parameters_by_path").paginate(
            Path=ssm_prefix, Recursive=True, WithDecryption=True
        )
        for p in page["Parameters"]
    ]
    data = {"version": VERSION, "tables": items, "parameters": parameters, "demo": demo}
    partial = path.with_suffix(".partial")
    partial.write_text(json.dumps(data, default=_bytes_as_text))
    os.replace(partial, path)
    return sum(len(table_items) for table_items in items.values())


def load(path: Path, *, dynamodb: Any, ssm: Any) -> dict[str, Any] | None:
    """The saved items and parameters put into the (new, empty) moto; returns the saved demo tokens, or None when
    there is no saved data. A file this code cannot read is refused with its path: start with FRESH=1 or remove it."""
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text(), object_hook=_text_as_bytes)
        if data.get("version") != VERSION:
            raise ValueError(f"version {data.get('version')!r}, not {VERSION}")
        for table, items in data["tables"].items():
            for start in range(0, len(items), BATCH_WRITE_ITEMS):
                requests = [{"PutRequest": {"Item": item}} for item in items[start : start + BATCH_WRITE_ITEMS]]
                dynamodb.batch_write_item(RequestItems={table: requests})
        for parameter in data["parameters"]:
            ssm.put_parameter(**parameter, Overwrite=True)
    except (ValueError, KeyError, TypeError) as error:
        raise ValueError(f"{path} cannot be loaded ({error}): `make run FRESH=1` starts clean") from None
    return dict(data["demo"], items=sum(len(items) for items in data["tables"].values()))


def _scan(dynamodb: Any, table: str) -> list[dict[str, Any]]:
    return [item for page in dynamodb.get_paginator("scan").paginate(TableName=table) for item in page["Items"]]


def _bytes_as_text(value: Any) -> Any:
    if isinstance(value, bytes):  # a binary attribute ({"B": b"…"}) in JSON
        return {"__base64__": base64.b64encode(value).decode()}
    raise TypeError(f"{type(value).__name__} is not JSON")


def _text_as_bytes(value: dict[str, Any]) -> Any:
    return base64.b64decode(value["__base64__"]) if set(value) == {"__base64__"} else value


def save_objects(folder: Path, *, s3: Any, buckets: list[str]) -> int:
    """Every object of `buckets` into `folder/<bucket>/<key>` (the folder replaced whole). Returns how many."""
    partial = folder.with_suffix(".partial")
    _remove(partial)
    count = 0
    for bucket in buckets:
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            for found in page.get("Contents", []):
                target = partial / bucket / found["Key"]
                target.parent.mkdir(parents=True, exist_ok=True)
                s3.download_file(bucket, found["Key"], str(target))
                count += 1
    _remove(folder)
    if partial.exists():
        os.replace(partial, folder)
    return count


def load_objects(folder: Path, *, s3: Any) -> int:
    """The saved objects put back into their (new, existing) buckets. Returns how many."""
    count = 0
    for bucket in sorted(p for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []:
        for file in sorted(f for f in bucket.rglob("*") if f.is_file()):
            s3.upload_file(str(file), bucket.name, file.relative_to(bucket).as_posix())
            count += 1
    return count


def _remove(folder: Path) -> None:
    import shutil

    shutil.rmtree(folder, ignore_errors=True)
