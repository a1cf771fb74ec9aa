"""`make bench`: paired cold starts, DynamoDB/SSM round trips, matching scale, throughput, artifact sizes -> one table
+ results.json.

Every figure is a ratio against a baseline measured in the same run, so the numbers mean the same on any machine.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import httpx

from bench.coldstart import bench_paired_cold_start

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results.json"
SHIPPED_BUILD = ROOT / ".aws-sam" / "build"  # what is deployed: the template's architecture


def bench_round_trips() -> list[dict[str, Any]]:
    """DynamoDB and SSM calls per warm webhook (known vs new client), counted with botocore event hooks."""
    from bench.fixtures import counting_calls, local_aws

    rows = []
    with local_aws() as world:
        world.webhook("warm-up", "79000000000")  # caches warm: project, SSM secret, clients
        for label, phone in (("known client", "79000000000"), ("new client", "79000000001")):
            with counting_calls() as counts:
                world.webhook(f"rt-{label}", phone)
            rows.append(
                {
                    "figure": f"webhook round trips, {label}",
                    "value": f"dynamodb {counts['dynamodb']}, ssm {counts['ssm']}",
                    "ratio": counts["dynamodb"],
                    "target": "<= 3 known, 0 ssm warm" if label == "known client" else "-",
                }
            )
    return rows


def bench_matching() -> list[dict[str, Any]]:
    from bench.fixtures import matching_timings

    small, large = matching_timings(100), matching_timings(100_000)
    rows = [
        {
            "figure": "matching p50 / p99, 100 clients",
            "value": f"{small.p50_ms:.2f} / {small.p99_ms:.2f} ms",
            "ratio": 1.0,
            "target": "-",
        },
        {
            "figure": "matching p50 / p99, 100,000 clients",
            "value": f"{large.p50_ms:.2f} / {large.p99_ms:.2f} ms",
            "ratio": round(large.p50_ms / small.p50_ms, 2),
            "target": "<= 1.2x",
        },
        {
            "figure": "naive scan of all variables, 100,000 clients (contrast)",
            "value": f"{large.scan_ms:.0f} ms",
            "ratio": round(large.scan_ms / large.p50_ms, 1),
            "target": "-",
        },
    ]
    return rows


def bench_throughput(requests: int = 300) -> list[dict[str, Any]]:
    """Webhooks/s through the local gateway against moto server vs moto's raw PutItem/s, side by side."""
    from bench.fixtures import local_stack

    with local_stack() as stack:
        client = httpx.Client(timeout=30)
        started = time.perf_counter()
        for n in range(requests):
            answer = client.post(
                stack["webhook_url"],
                data={"id": f"tp-{n}", "calltype": "IN", "src": f"7900{n % 1000:07d}", "talktime": "65"},
            )
            assert answer.status_code == 200, answer.text
        webhooks_per_second = requests / (time.perf_counter() - started)
        dynamodb = boto3.client(
            "dynamodb",
            endpoint_url=stack["aws_endpoint_url"],
            region_name="us-east-1",
            aws_access_key_id="local",
            aws_secret_access_key="local",
        )
        started = time.perf_counter()
        for n in range(requests):
            dynamodb.put_item(TableName=stack["table_name"], Item={"pk": {"S": f"BENCH#{n}"}, "sk": {"S": "RAW"}})
        puts_per_second = requests / (time.perf_counter() - started)
        started = time.perf_counter()
        for n in range(requests):
            dynamodb.transact_write_items(
                TransactItems=[
                    {"Put": {"TableName": stack["table_name"], "Item": {"pk": {"S": f"BENCH#{n}"}, "sk": {"S": "TX"}}}}
                ]
            )
        transactions_per_second = requests / (time.perf_counter() - started)
    return [
        {
            "figure": "moto server raw PutItem (baseline)",
            "value": f"{puts_per_second:.0f} /s",
            "ratio": 1.0,
            "target": "-",
        },
        {
            "figure": "webhooks through the local gateway",
            "value": f"{webhooks_per_second:.0f} /s",
            "ratio": round(webhooks_per_second / puts_per_second, 2),
            "target": ">= 0.5x raw PutItem",
        },
        {
            # moto deep-copies the whole table on every TransactWriteItems (its rollback): O(table size) per call.
            "figure": "moto server raw 1-item TransactWriteItems (contrast)",
            "value": f"{transactions_per_second:.0f} /s",
            "ratio": round(transactions_per_second / puts_per_second, 2),
            "target": "-",
        },
    ]


def bench_sizes() -> list[dict[str, Any]]:
    build = SHIPPED_BUILD
    if not build.exists():
        return [{"figure": "artifact sizes", "value": "run `make build` first", "ratio": "-", "target": "-"}]
    rows = []
    for folder in sorted(p for p in build.iterdir() if p.is_dir()):
        size = zipped_size(folder)
        target = "<= 10 MB" if folder.name.endswith("Layer") else "<= 50 KB"
        rows.append(
            {"figure": f"zip size {folder.name}", "value": f"{size / 1024:.0f} KB", "ratio": "-", "target": target}
        )
    return rows


def zipped_size(folder: Path) -> int:
    archive = ROOT / ".aws-sam" / f"{folder.name}.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zipped:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                zipped.write(path, path.relative_to(folder))
    size = archive.stat().st_size
    archive.unlink()
    return size


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--build-dir",
        type=Path,
        default=ROOT / ".aws-sam" / "bench-build",
        help="the build to run the functions from, for this machine's architecture (`make bench-build` makes it)",
    )
    parser.add_argument("--rounds", type=int, default=10, help="cold-start pairs per function")
    options = parser.parse_args()
    sections: list[Callable[[], list[dict[str, Any]]]] = [
        lambda: bench_paired_cold_start(options.build_dir, rounds=options.rounds),
        bench_round_trips,
        bench_matching,
        bench_throughput,
        bench_sizes,
    ]
    rows: list[dict[str, Any]] = []
    for section in sections:
        rows.extend(section())
    width = max(len(r["figure"]) for r in rows)
    print(f"{'figure':<{width}}  {'value':>26}  {'ratio':>18}  target")
    for r in rows:
        print(f"{r['figure']:<{width}}  {r['value']:>26}  {r['ratio']!s:>18}  {r['target']}")
    RESULTS.write_text(json.dumps(rows, indent=2, ensure_ascii=False))
    print(f"\nwritten {RESULTS.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
