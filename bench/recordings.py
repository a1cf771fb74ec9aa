"""`make bench-recordings`: recordings that outlive the PBX's link (issue 25), measured.

1. Copy latency, on the real local stack (`make run`'s processes): N simulator calls' completion webhooks bring a
   recording link; for each, the seconds from the webhook's answer until `GET /v1/calls/{call_key}` says
   `recording.state: archived` (RecordingQueue → RecordingFunction → moto's S3). Target: p95 ≤ 60 s.
   Then the PBX's links die (the simulator's `recordings_gone`) and every stable link is opened: broken = any that
   does not end in the recording's bytes. Target: 0.
2. Memory of a 50 MB copy: a child process streams a 50 MB MP3 from a local HTTP server through the copier's own
   path (`RecordingFetcher` over the PBX guard → `S3Archive.upload`, multipart) into a moto server's S3, and reports
   its tracemalloc peak and peak RSS growth during the copy. Target: bounded (a few 5 MB parts), far under 50 MB.

Prints the figures and writes bench/recordings.json. Options: --calls N, --megabytes M, --only latency|memory.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import threading
import time
import tracemalloc
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import boto3
import httpx

from bench.fixtures import local_stack, run_scenarios
from devstack.pbx_simulator import RECORDING_MP3, silent_mp3
from devstack.run import free_port

RESULTS = Path(__file__).resolve().parent / "recordings.json"
LATENCY_TARGET_SECONDS = 60.0


# -- 1. copy latency on the local stack --------------------------------------------------------------------------------
def latency(calls: int) -> dict[str, Any]:
    with local_stack("--webhook-delay", "0.2") as stack:
        pbx = stack["pbx_url"].split("/b3/")[0]
        bot = {"Authorization": f"Bearer {stack['bot_token']}"}

        def one(n: int) -> tuple[float, str]:
            form = {"id": f"bench-rec-{n}", "calltype": "IN", "src": f"7900555{n:04d}", "talktime": "2"}
            form["link"] = f"{pbx}/records/bench-rec-{n}.mp3"
            answer = httpx.post(stack["webhook_url"], data=form, timeout=30)
            answer.raise_for_status()
            arrived = time.monotonic()
            while True:
                call = httpx.get(f"{stack['api_url']}/v1/calls/bench-rec-{n}", headers=bot, timeout=30).json()
                recording = call.get("recording") or {}
                if recording.get("state") == "archived":
                    return time.monotonic() - arrived, str(recording["url"])
                if recording.get("state") == "failed" or time.monotonic() - arrived > 300:
                    raise RuntimeError(f"call {n}: {recording}")
                time.sleep(0.1)

        with ThreadPoolExecutor(max_workers=10) as pool:
            done = list(pool.map(one, range(calls)))
        seconds = sorted(s for s, _ in done)
        httpx.post(f"{stack['pbx_control_url']}/config", json={"recordings_gone": True}).raise_for_status()
        gone = httpx.get(f"{pbx}/records/bench-rec-0.mp3").status_code
        broken = sum(
            1 for _, link in done if httpx.get(link, follow_redirects=True, timeout=30).content != RECORDING_MP3
        )
    p95 = seconds[max(0, round(0.95 * len(seconds)) - 1)]
    return {
        "calls": calls,
        "copy_done_p50_s": round(statistics.median(seconds), 2),
        "copy_done_p95_s": round(p95, 2),
        "copy_done_max_s": round(seconds[-1], 2),
        "pbx_link_after_gone_status": gone,
        "broken_links_after_pbx_gone": broken,
        "ok": p95 <= LATENCY_TARGET_SECONDS and broken == 0 and gone == 404,
    }


# -- 2. memory of a 50 MB copy -----------------------------------------------------------------------------------------
@contextmanager
def mp3_server(size_bytes: int) -> Iterator[str]:
    """A local HTTP server streaming an MP3 of `size_bytes` (silence, 64 KB writes, no Content-Length: chunked)."""
    frame = silent_mp3(0.03)[:417]

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "audio/mpeg")
            self.send_header("Content-Length", str(size_bytes))
            self.end_headers()
            block = frame * (64 * 1024 // len(frame))
            sent = 0
            while sent < size_bytes:
                part = block[: size_bytes - sent]
                self.wfile.write(part)
                sent += len(part)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/records/big.mp3"
    finally:
        server.shutdown()


@contextmanager
def moto_s3() -> Iterator[str]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "devstack.moto_server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(url, timeout=1)
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


LOCAL_AWS = {"AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local", "AWS_DEFAULT_REGION": "us-east-1"}


def memory(megabytes: int) -> dict[str, Any]:
    size = megabytes * 1024 * 1024
    with mp3_server(size) as source, moto_s3() as endpoint:
        env = {**os.environ, **LOCAL_AWS, "AWS_ENDPOINT_URL": endpoint}
        boto3.client("s3", endpoint_url=endpoint, **_keys()).create_bucket(Bucket="bench-recordings")
        child = subprocess.run(
            [sys.executable, "-m", "bench.recordings", "--copy-child", source, "--bucket", "bench-recordings"],
            env=env,
            capture_output=True,
            text=True,
        )
        if child.returncode != 0:
            raise RuntimeError(f"the copy failed: {child.stderr[-2000:]}")
        measured = json.loads(child.stdout.strip().splitlines()[-1])
        stored = boto3.client("s3", endpoint_url=endpoint, **_keys()).head_object(
            Bucket="bench-recordings", Key="bench/big.mp3"
        )
    measured["archived_bytes"] = int(stored["ContentLength"])
    measured["ok"] = measured["archived_bytes"] == size and measured["tracemalloc_peak_mb"] < megabytes / 2
    return {"megabytes": megabytes, **measured}


def _keys() -> dict[str, str]:
    return {"region_name": "us-east-1", "aws_access_key_id": "local", "aws_secret_access_key": "local"}


def copy_child(source: str, bucket: str) -> None:
    """In a process of its own: one copy through the copier's path; prints its memory as JSON."""
    from iptelefon.adapters.recording_download import get_recording_fetcher
    from iptelefon.data.recording_archive import S3Archive, s3_client

    fetcher = get_recording_fetcher("local", 2000 * 1024 * 1024)
    archive = S3Archive(bucket, s3_client())
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    tracemalloc.start()
    started = time.monotonic()
    with fetcher.open(source) as download:
        archive.upload("bench/big.mp3", download, download.content_type)
    seconds = time.monotonic() - started
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    print(
        json.dumps(
            {
                "copy_seconds": round(seconds, 2),
                "tracemalloc_peak_mb": round(peak / 1024 / 1024, 1),
                "peak_rss_growth_mb": round((rss_after - rss_before) / 1024, 1),
                "peak_rss_mb": round(rss_after / 1024, 1),
            }
        )
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=["latency", "memory"])
    parser.add_argument("--calls", type=int, default=30)
    parser.add_argument("--megabytes", type=int, default=50)
    parser.add_argument("--copy-child", help=argparse.SUPPRESS)
    parser.add_argument("--bucket", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.copy_child:
        copy_child(args.copy_child, args.bucket)
        return 0
    scenarios = {"latency": lambda: latency(args.calls), "memory": lambda: memory(args.megabytes)}
    return run_scenarios("recordings", scenarios, args.only, RESULTS)


if __name__ == "__main__":
    raise SystemExit(main())
