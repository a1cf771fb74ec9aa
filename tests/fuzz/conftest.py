"""The fuzz tests' fixtures: the real local stack as a subprocess (issue 6) and the tally of generated requests."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
from fixtures.pbx import fake_pbx
from fixtures.projects import admin_target, lambda_context, project

from devstack.run import free_ports

__all__ = ["admin_target", "fake_pbx", "lambda_context", "project"]  # the admin fuzz runs the handler in-process


@pytest.fixture(scope="session")
def local_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """`python -m devstack.run` (moto server, local gateway, PBX simulator) on free 127.0.0.1 ports: its stack.json.

    The simulator's completion webhooks wait an hour, so every call record in the stack comes from a request a test
    sent. The stack's output goes to `<state>/stack.log` (a pipe nobody reads would block the gateway).
    """
    import json
    import signal
    import subprocess
    import sys
    import time

    from devstack.template import ROOT

    state = tmp_path_factory.mktemp("local-stack")
    ports = [str(port) for port in free_ports(("api", "moto", "pbx", "faults")).values()]
    # The stack gets its own AWS settings: no endpoint override a test may have set in this process.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_ENDPOINT_URL", "AWS_PROFILE"))}
    log = (state / "stack.log").open("wb")
    command = [sys.executable, "-m", "devstack.run", "--api-port", ports[0], "--moto-port", ports[1]]
    command += ["--pbx-port", ports[2], "--faults-port", ports[3], "--state-dir", str(state), "--webhook-delay", "3600"]
    command += ["--queue-visibility-timeout", "2"]  # a message that failed during an outage returns in 2 s
    command += ["--pbx-dialect", "classic"]  # the seeded bot call reads contract section 1's reply
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    stack_file = state / "stack.json"
    deadline = time.monotonic() + 90
    while not stack_file.exists():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            process.wait()
            log.close()
            pytest.fail(f"the local stack did not start:\n{(state / 'stack.log').read_text()[-5000:]}")
        time.sleep(0.2)
    info: dict[str, Any] = json.loads(stack_file.read_text())
    info["_log"] = str(state / "stack.log")
    yield info
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    log.close()


class FuzzTally:
    """How many generated requests the fuzz tests sent, by test and status; printed at the end of the session."""

    def __init__(self) -> None:
        from collections import Counter, defaultdict

        self.by_test: defaultdict[str, Counter[int]] = defaultdict(Counter)

    def count(self, test: str, status: int) -> None:
        self.by_test[test][status] += 1

    @property
    def total(self) -> int:
        return sum(sum(statuses.values()) for statuses in self.by_test.values())

    def report(self) -> str:
        from collections import Counter

        def shown(statuses: Counter[int]) -> str:
            return ", ".join(f"{status}: {n}" for status, n in sorted(statuses.items()))

        statuses = sum(self.by_test.values(), Counter())
        lines = [f"fuzz: {self.total} generated requests through the local stack ({shown(statuses)})"]
        lines += [f"  {sum(s.values()):6d}  {test}  ({shown(s)})" for test, s in sorted(self.by_test.items())]
        return "\n".join(lines)


@pytest.fixture(scope="session")
def fuzz_tally() -> Iterator[FuzzTally]:
    """The fuzz tests' request count; with FUZZ_MIN_CASES set (`make fuzz`), a session that sent fewer fails."""
    tally = FuzzTally()
    yield tally
    if tally.total:
        print("\n" + tally.report())
    minimum = int(os.environ.get("FUZZ_MIN_CASES") or 0)
    assert tally.total >= minimum, f"fuzz: {tally.total} generated requests, fewer than FUZZ_MIN_CASES={minimum}"
