"""`make run` cannot be broken by accident (issue 13): a busy port or a state dir in use is refused before anything
starts, a running stack and its files are left alone, and stack.json goes away on every kind of stop."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from support import ROOT, LocalStackProcess

from devstack.run import free_port, free_ports
from iptel_admin import cli


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStackProcess]:
    """A stack that the others must not disturb."""
    local = LocalStackProcess.start(tmp_path_factory.mktemp("first"))
    local.wait_until_running()
    yield local
    local.stop()


def _run(state: Path, ports: dict[str, int], *options: str) -> subprocess.CompletedProcess[str]:
    """A second `make run` in the foreground, with its output."""
    command = [sys.executable, "-m", "devstack.run", "--state-dir", str(state), *options]
    for name, port in ports.items():
        command += [f"--{name}-port", str(port)]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out, err = process.communicate(timeout=60)
    except subprocess.TimeoutExpired:  # it started after all: SIGTERM lets it stop its children (SIGKILL would not)
        process.terminate()
        out, err = process.communicate(timeout=30)
    return subprocess.CompletedProcess(command, process.returncode, out, err)


def _still_serves(local: LocalStackProcess, capsys: pytest.CaptureFixture[str]) -> bool:
    """The first stack's CLI still works through its own stack.json."""
    code = cli.main(["--stack-file", str(local.stack_file), "employee", "list", "--project", "demo"])
    out = capsys.readouterr().out
    return code == 0 and {e["id"] for e in json.loads(out)} == {"346", "zoiper", "intern"}


def test_a_second_run_on_the_same_ports_is_refused_and_the_first_is_left_alone(
    running: LocalStackProcess, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a running stack and its stack.json
    before = running.stack_file.read_bytes()
    # When `make run` is started again, same state dir and ports
    second = _run(running.state, running.ports)
    # Then it refuses at once, naming the port and what to do, and starts nothing
    assert second.returncode == 2
    api = running.ports["api"]
    assert f"port {api} (API_PORT) is in use" in second.stderr and f"make run API_PORT={api + 100}" in second.stderr
    assert "started" not in second.stdout and "Traceback" not in second.stderr
    # And the first stack keeps its stack.json and its CLI
    assert running.stack_file.read_bytes() == before
    assert _still_serves(running, capsys)


def test_a_second_run_on_free_ports_but_the_same_state_dir_is_refused(
    running: LocalStackProcess, capsys: pytest.CaptureFixture[str]
) -> None:
    before = running.stack_file.read_bytes()
    second = _run(running.state, free_ports(running.ports))
    assert second.returncode == 2
    assert f"another local stack (pid {running.process.pid}) runs with the state dir {running.state}" in second.stderr
    assert running.stack_file.read_bytes() == before
    assert _still_serves(running, capsys)


def test_a_port_taken_by_any_program_is_named_before_anything_starts(tmp_path: Path) -> None:
    # Given some program listening where the PBX simulator would
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        ports = free_ports(("api", "moto", "faults", "receiver")) | {"pbx": other.getsockname()[1]}
        # When the stack is started
        refused = _run(tmp_path, ports)
    # Then it names that port and its variable, and leaves nothing behind
    assert refused.returncode == 2
    assert f"port {ports['pbx']} (PBX_PORT) is in use" in refused.stderr
    assert "started" not in refused.stdout and not (tmp_path / "stack.json").exists()


def test_one_port_given_twice_is_refused(tmp_path: Path) -> None:
    port = free_port()
    refused = _run(
        tmp_path, {"api": port, "moto": port, "pbx": free_port(), "faults": free_port(), "receiver": free_port()}
    )
    assert refused.returncode == 2 and f"port {port} is given as both API_PORT and MOTO_PORT" in refused.stderr


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGHUP], ids=["ctrl-c", "terminal-closed"])
def test_stack_json_is_removed_when_stopped(signum: int, tmp_path: Path) -> None:
    local = LocalStackProcess.start(tmp_path)
    local.wait_until_running()
    assert local.stop(signum) == 0
    assert not local.stack_file.exists()


def test_stack_json_is_removed_when_a_service_dies(tmp_path: Path) -> None:
    # Given a running stack; When its PBX simulator dies
    local = LocalStackProcess.start(tmp_path)
    local.wait_until_running()
    pid = int(re.findall(r"started PBX simulator \(pid (\d+)\)", local.log)[0])
    os.kill(pid, signal.SIGKILL)
    # Then the whole stack stops, fails, and takes its stack.json with it
    assert local.process.wait(timeout=30) == 1
    assert not local.stack_file.exists()
    assert "a local service exited" in local.log


@pytest.mark.skipif(sys.platform != "linux", reason="a child learns of its parent's death from Linux's prctl")
def test_a_killed_stack_takes_its_services_with_it(tmp_path: Path) -> None:
    # Given a running stack and the services it started
    local = LocalStackProcess.start(tmp_path)
    local.wait_until_running()
    services = [int(pid) for pid in re.findall(r"started .+? \(pid (\d+)\)", local.log)]
    assert len(services) >= 4
    # When the stack's own process is killed, without a chance to stop them
    local.process.kill()
    local.process.wait(timeout=10)
    # Then none of them is left running (a zombie is reaped by init: gone too)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and [pid for pid in services if _alive(pid)]:
        time.sleep(0.2)
    left = [pid for pid in services if _alive(pid)]
    for pid in left:  # not this test's to leave behind
        os.kill(pid, signal.SIGTERM)
    assert left == []


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


def test_a_failed_start_stops_what_it_started_and_leaves_no_stack_json(tmp_path: Path) -> None:
    # Given the stack.json of an earlier stack that was killed (SIGKILL leaves it)
    (tmp_path / "stack.json").write_text('{"aws_endpoint_url": "http://127.0.0.1:1"}')
    # When a start fails half-way (moto is up, the DynamoDB fault proxy refuses its conflict rate and exits)
    ports = free_ports(("api", "moto", "pbx", "faults", "receiver"))
    failed = _run(tmp_path, ports, "--conflict-rate", "2")
    # Then it says so, stops moto, and no stack.json points anywhere
    assert failed.returncode == 1 and "make run failed" in failed.stderr
    assert "started moto server" in failed.stdout
    assert not (tmp_path / "stack.json").exists()
    time.sleep(0.5)
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", ports["moto"])) != 0
