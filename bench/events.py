"""`make bench-events`: call events out (issue 22), measured against the real local stack (`make run`'s processes).

1. Latency: calls from the PBX simulator (each rings, is answered, ends with a recording: 4 events), delivered to the
   stack's sample receiver. Event -> delivered: from the moment the event was stored (its `occurred_at`) to the
   moment the receiver had it, verified. Target: p95 <= 2 s. Once at a steady rate (1 call/s), once in a burst
   (4 calls/s: what moto, one process for every table and queue, can take is then the bound).
2. An endpoint down for a simulated hour: a second stack runs with EVENTS_TIME_SCALE (default 360: an hour is 10 s, the
   retry schedule shrinks alike); the receiver answers 503 while calls keep coming, then comes back. Expected: every
   event delivered once (one 2xx per event id), in order per call, none lost.
3. No head-of-line blocking: 50 endpoints (in this process), 10 of them failing permanently (503), and completions
   posted to the webhook: N events x 50 endpoints = 1,000 deliveries. Expected: the other 40 endpoints get all of
   theirs, about as fast as when none fails (3a, the same run: the local stack's own throughput is the baseline).

Prints the figures and writes bench/events.json. Options: --calls, --scale, --down-seconds, --only.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from collections import defaultdict
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from bench.fixtures import local_stack
from devstack.event_receiver import Receiver, serve

RESULTS = Path(__file__).resolve().parent / "events.json"


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * share))] if ordered else float("nan")


def latencies(entries: list[dict[str, Any]]) -> list[float]:
    return [
        e["received_at"] - datetime.fromisoformat(e["event"]["occurred_at"]).timestamp()
        for e in entries
        if e["verified"] and 200 <= e["status"] < 300
    ]


def wait_for(probe: Any, within: float, every: float = 0.5) -> Any:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        found = probe()
        if found:
            return found
        time.sleep(every)
    return probe()


def received(stack: dict[str, Any]) -> list[dict[str, Any]]:
    return list(httpx.get(f"{stack['receiver_url']}_events", timeout=10).json())


def simulate_calls(stack: dict[str, Any], count: int, gap: float, prefix: str) -> list[str]:
    sim = stack["pbx_control_url"]
    calls = []
    for n in range(count):
        phone = f"7900{prefix}{n:06d}"  # 11 digits: a Russian mobile number
        calls.append(httpx.post(f"{sim}/incoming", json={"phone": phone, "exten": "346"}, timeout=10).json()["callid"])
        time.sleep(gap)
    return calls


def of_calls(entries: list[dict[str, Any]], calls: list[str]) -> list[dict[str, Any]]:
    wanted = set(calls)
    return [e for e in entries if ((e["event"] or {}).get("data") or {}).get("call_key") in wanted]


# -- 1. latency --------------------------------------------------------------------------------------------------------
def bench_latency(stack: dict[str, Any], calls: int, gap: float) -> dict[str, Any]:
    httpx.delete(f"{stack['receiver_url']}_events")
    made = simulate_calls(stack, calls, gap, "1")
    expected = 4 * calls
    wait_for(lambda: len(of_calls(received(stack), made)) >= expected, within=60 + calls)
    came = of_calls(received(stack), made)
    times = latencies(came)
    return {
        "calls_per_second": round(1 / gap, 2),
        "events": expected,
        "delivered": len(times),
        "p50_s": round(statistics.median(times), 3),
        "p95_s": round(percentile(times, 0.95), 3),
        "max_s": round(max(times), 3),
        "target_p95_s": 2.0,
    }


# -- 2. an endpoint down for a simulated hour --------------------------------------------------------------------------
def bench_outage(stack: dict[str, Any], calls: int, down_seconds: float, scale: float) -> dict[str, Any]:
    receiver = stack["receiver_url"]
    httpx.delete(f"{receiver}_events")
    httpx.post(f"{receiver}_config", json={"status": 503})
    started = time.monotonic()
    made = simulate_calls(stack, calls, down_seconds / max(calls, 1) / 2, "2")
    time.sleep(max(0.0, down_seconds - (time.monotonic() - started)))
    httpx.post(f"{receiver}_config", json={"status": 204})
    back = time.monotonic()
    expected = 4 * calls

    def delivered() -> list[dict[str, Any]]:
        return [e for e in of_calls(received(stack), made) if e["verified"] and e["status"] == 204]

    wait_for(lambda: len({e["webhook_id"] for e in delivered()}) >= expected, within=600)
    done = time.monotonic()
    ok = delivered()
    ids = [e["webhook_id"] for e in ok]
    order = ["call.ringing", "call.answered", "call.completed", "recording.ready"]
    by_call: dict[str, list[str]] = defaultdict(list)
    for entry in ok:
        by_call[entry["event"]["data"]["call_key"]].append(entry["type"])
    in_order = all(types == order for types in by_call.values()) and len(by_call) == calls
    refused = [e for e in of_calls(received(stack), made) if e["status"] == 503]
    return {
        "time_scale": scale,
        "down_simulated_hours": round(down_seconds * scale / 3600, 2),
        "events": expected,
        "delivered_once": len(set(ids)),
        "delivered_twice": len(ids) - len(set(ids)),
        "lost": expected - len(set(ids)),
        "in_order_per_call": in_order,
        "attempts_refused_while_down": len(refused),
        "all_delivered_after_back_simulated_min": round((done - back) * scale / 60, 1),
    }


# -- 3. 50 endpoints, 10 failing ---------------------------------------------------------------------------------------
def bench_fanout(stack: dict[str, Any], events: int, endpoints: int = 50, failing: int = 10) -> dict[str, Any]:
    api, admin = stack["api_url"], {"Authorization": f"Bearer {stack['admin_token']}"}
    folder = Path(tempfile.mkdtemp(prefix="bench-events-"))
    receivers: list[tuple[Receiver, Any, str]] = []
    try:
        for n in range(endpoints):
            receiver = Receiver(folder / f"secret-{n}", quiet=True)
            server = serve(receiver, 0)
            url = f"http://127.0.0.1:{server.server_address[1]}/"
            made = httpx.post(
                f"{api}/v1/endpoints",
                headers=admin,
                json={"url": url, "description": f"bench {n}", "event_types": ["call.completed", "call.missed"]},
                timeout=10,
            ).json()
            (folder / f"secret-{n}").write_text(made["secret"])
            receiver.status = 503 if n < failing else 204
            receivers.append((receiver, server, made["endpoint_id"]))
        webhook = stack["webhook_url"]
        started = time.time()
        for n in range(events):
            form = {"id": f"fanout-{started:.0f}-{n}", "calltype": "IN", "src": f"7900333{n:04d}", "talktime": "30"}
            assert httpx.post(webhook, data=form, timeout=10).status_code == 200
        healthy = receivers[10:]  # the same 40 endpoints whether or not the first 10 fail
        expected = events * len(healthy)

        def delivered() -> list[dict[str, Any]]:
            return [e for r, _, _ in healthy for e in r.events if e["status"] == 204]

        wait_for(lambda: len(delivered()) >= expected, within=300)
        ok = delivered()
        times = latencies(ok)
        return {
            "endpoints": endpoints,
            "failing_permanently": failing,
            "events": events,
            "deliveries": events * endpoints,
            "healthy_expected": expected,
            "healthy_delivered": len(ok),
            "healthy_p50_s": round(statistics.median(times), 3) if times else None,
            "healthy_p95_s": round(percentile(times, 0.95), 3) if times else None,
            "healthy_all_done_s": round(max(e["received_at"] for e in ok) - started, 2) if ok else None,
            "failing_attempts": sum(len(r.events) for r, _, _ in receivers[:failing]),
        }
    finally:
        for _, server, endpoint_id in receivers:
            server.shutdown()
            httpx.delete(f"{api}/v1/endpoints/{endpoint_id}", headers=admin, timeout=10)


def warm(stack: dict[str, Any]) -> None:
    """Short calls, and a first call of each function: cold starts are not the steady state being measured."""
    httpx.post(f"{stack['pbx_control_url']}/config", json={"ring_seconds": 0.3, "talk_seconds": 0.3})
    simulate_calls(stack, 2, 1.0, "0")
    time.sleep(5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=30, help="simulated calls in 1 (4 events each)")
    parser.add_argument("--gap", type=float, default=1.0, help="seconds between the calls of 1")
    parser.add_argument("--burst-calls", type=int, default=50, help="simulated calls in 1b")
    parser.add_argument("--burst-gap", type=float, default=0.25, help="seconds between the calls of 1b")
    parser.add_argument("--outage-calls", type=int, default=20)
    parser.add_argument("--fanout-events", type=int, default=20, help="events in 3 (x 50 endpoints)")
    parser.add_argument("--scale", type=float, default=360.0, help="EVENTS_TIME_SCALE: 360 makes an hour 10 s")
    parser.add_argument("--down-seconds", type=float, default=10.0, help="real seconds the endpoint is down in 2")
    parser.add_argument("--only", choices=["latency", "outage", "fanout"])
    args = parser.parse_args()
    results: dict[str, Any] = {}
    if args.only in (None, "latency", "fanout"):
        os.environ.pop("EVENTS_TIME_SCALE", None)  # real time: the failing endpoints retry as they would on AWS
        with local_stack() as stack:
            warm(stack)
            if args.only in (None, "latency"):
                results["latency"] = bench_latency(stack, args.calls, args.gap)
                print("1. event -> delivered:", json.dumps(results["latency"]), flush=True)
                results["latency_burst"] = bench_latency(stack, args.burst_calls, args.burst_gap)
                print("1b. the same, a burst:", json.dumps(results["latency_burst"]), flush=True)
            if args.only in (None, "fanout"):
                results["fanout_none_failing"] = bench_fanout(stack, args.fanout_events, failing=0)
                print("3a. 50 endpoints, none failing:", json.dumps(results["fanout_none_failing"]), flush=True)
                results["fanout"] = bench_fanout(stack, args.fanout_events, failing=10)
                print("3. 50 endpoints, 10 failing:", json.dumps(results["fanout"]), flush=True)
    if args.only in (None, "outage"):
        os.environ["EVENTS_TIME_SCALE"] = str(args.scale)  # the stack's functions inherit it
        with local_stack() as stack:
            warm(stack)
            results["outage"] = bench_outage(stack, args.outage_calls, args.down_seconds, args.scale)
            print("2. endpoint down for a simulated hour:", json.dumps(results["outage"]), flush=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(f"written to {RESULTS}")


if __name__ == "__main__":
    main()
