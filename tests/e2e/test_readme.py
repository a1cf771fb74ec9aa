"""The README is true (issue 13): its shell blocks that talk to the local stack run against a real `make run`, in
README order, as a newcomer would paste them, and every other block is accounted for."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from support import ROOT

from devstack.run import free_ports

README = (ROOT / "README.md").read_text()
BLOCKS = re.findall(r"^```(\w+)\n(.*?)^```", README, flags=re.MULTILINE | re.DOTALL)
SHELL_BLOCKS = [text for language, text in BLOCKS if language == "bash"]
# What a block does that this test cannot: (how the block starts, why it is not run here).
NOT_RUN = {
    "make run    #": "`make run` is what this test starts; `make test` is what runs this test",
    "aws sqs ": "needs a deployed stage",
    "make build ": "`make test` builds; `sam deploy` needs an AWS account",
}
# Every curl answer must be a 2xx (the README shows the refusals as comments), every command must succeed.
PRELUDE = 'curl() { command curl --show-error --fail-with-body "$@"; }\n'


def _talks_to_the_stack(block: str) -> bool:
    return any(mark in block for mark in ("127.0.0.1", ".local/stack.json", ".venv/bin/iptel"))


@dataclass
class MakeRun:
    folder: Path  # where a newcomer's shell is: .venv and .local/stack.json as in the project folder
    ports: dict[str, int]
    process: subprocess.Popen[bytes]

    @property
    def stack_file(self) -> Path:
        return self.folder / ".local" / "stack.json"

    @property
    def log(self) -> str:
        return (self.folder / "make-run.log").read_text(errors="replace")

    def adapt(self, block: str) -> str:
        """The block for this stack's free ports; `make run …` lines are the stack already running."""
        block = block.replace("127.0.0.1:3000", f"127.0.0.1:{self.ports['API_PORT']}")
        block = block.replace("127.0.0.1:8081", f"127.0.0.1:{self.ports['PBX_PORT']}")
        block = block.replace("127.0.0.1:8790", f"127.0.0.1:{self.ports['RECEIVER_PORT']}")
        return "\n".join(line for line in block.splitlines() if not line.startswith("make run"))


@pytest.fixture(scope="module")
def make_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MakeRun]:
    """`make run` with the README's port variables, in a process group of its own (Ctrl-C reaches make and Python)."""
    folder = tmp_path_factory.mktemp("newcomer")
    (folder / ".venv").symlink_to(ROOT / ".venv")
    ports = free_ports(("API_PORT", "MOTO_PORT", "PBX_PORT", "FAULTS_PORT", "RECEIVER_PORT"))
    # What a newcomer runs: the default dialect (zeon, the public integration's).
    variables = [f"{name}={port}" for name, port in ports.items()] + [f"STATE_DIR={folder / '.local'}"]
    log = (folder / "make-run.log").open("wb")
    process = subprocess.Popen(
        [shutil.which("make") or "make", "--no-print-directory", "run", *variables],
        cwd=ROOT,
        env=_newcomer_env(),
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    stack = MakeRun(folder, ports, process)
    try:
        _wait_for(stack)
        yield stack
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGINT)
            process.wait(timeout=60)
        log.close()


def _newcomer_env() -> dict[str, str]:
    """A shell without this test session's AWS settings."""
    return {name: os.environ[name] for name in ("PATH", "HOME", "LANG", "TMPDIR") if name in os.environ}


def _wait_for(stack: MakeRun) -> None:
    deadline = time.monotonic() + 120
    while not stack.stack_file.exists():
        if stack.process.poll() is not None or time.monotonic() > deadline:
            raise AssertionError(f"make run did not start:\n{stack.log[-5000:]}")
        time.sleep(0.2)


def _bash(stack: MakeRun, script: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [shutil.which("bash") or "bash", "-euo", "pipefail", "-c", PRELUDE + script],
        cwd=stack.folder,
        env=_newcomer_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_every_shell_block_is_run_or_accounted_for() -> None:
    assert SHELL_BLOCKS
    for block in SHELL_BLOCKS:
        reasons = [why for start, why in NOT_RUN.items() if block.startswith(start)]
        assert _talks_to_the_stack(block) != bool(reasons), f"run it here or say in NOT_RUN why not:\n{block}"


def test_the_readme_shell_blocks_succeed_against_make_run(make_run: MakeRun) -> None:
    ran = 0
    for block in filter(_talks_to_the_stack, SHELL_BLOCKS):
        done = _bash(make_run, make_run.adapt(block))
        assert done.returncode == 0, f"{block}\n--- stdout\n{done.stdout}\n--- stderr\n{done.stderr}"
        assert "Traceback" not in done.stderr and "\\u04" not in done.stdout, done.stderr + done.stdout
        ran += 1
    assert ran >= 5


def test_the_stack_file_has_what_the_readme_shows(make_run: MakeRun) -> None:
    [shown] = [json.loads(text) for language, text in BLOCKS if language == "json"]
    written: dict[str, Any] = json.loads(make_run.stack_file.read_text())
    assert set(shown) - {"…"} <= set(written)
    assert written["project_id"] == shown["project_id"]


def test_the_python_modules_the_readme_names_run() -> None:
    for command in sorted(set(re.findall(r"`(\.venv(?:-tools)?/bin/python -m [\w.]+)`", README))):
        done = subprocess.run(command.split(), cwd=ROOT, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0 and done.stdout.strip(), f"{command}: {done.stderr[-2000:]}"


def test_every_make_target_the_readme_names_exists() -> None:
    makefile = (ROOT / "Makefile").read_text()
    named = set(re.findall(r"`make ([a-z][a-z-]*)", README))
    assert named and {target for target in named if not re.search(rf"^{target}:", makefile, re.MULTILINE)} == set()


def test_make_run_passes_pbx_dialect_to_the_simulator(make_run: MakeRun) -> None:
    # Given a plain `make run` (the only `make run` of the suite: the Makefile's part is tested here)
    written = json.loads(make_run.stack_file.read_text())
    # Then the Makefile's default dialect reaches stack.json, the banner and the simulator
    assert written["pbx_dialect"] == "zeon"
    assert "PBX dialect: zeon" in make_run.log
    assert httpx.get(f"{written['pbx_control_url']}/config").json()["dialect"] == "zeon"


def test_ctrl_c_on_make_run_removes_the_stack_file(make_run: MakeRun) -> None:
    # Last in this module: it stops the stack the other tests used. (make itself dies of the SIGINT, as it should.)
    os.killpg(make_run.process.pid, signal.SIGINT)
    make_run.process.wait(timeout=60)
    deadline = time.monotonic() + 30  # make does not wait for its child: the stack finishes stopping after it
    while "stopped the local stack" not in make_run.log and time.monotonic() < deadline:
        time.sleep(0.2)
    assert "stopped the local stack" in make_run.log
    assert not make_run.stack_file.exists()
