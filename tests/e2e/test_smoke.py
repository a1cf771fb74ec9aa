"""The smoke test the pipeline runs against a deployed stage (`devstack.smoke`), run here against the local stack."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from support import ROOT, LocalStackProcess

pytestmark = pytest.mark.stack


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    local = LocalStackProcess.start(tmp_path_factory.mktemp("stack"))
    info = local.wait_until_running(timeout=60)
    yield info
    local.stop(timeout=20)


def smoke(*args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "devstack.smoke", *args]
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)


def test_the_smoke_test_passes_against_a_working_stage(stack: dict[str, Any]) -> None:
    # Given the running local stack; When the smoke test runs with its URL and the demo bot token, as a user would
    done = smoke("--base-url", stack["api_url"], "--token", stack["bot_token"])

    # Then every check passes (each function behind the API answered) and the token is not printed
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.splitlines()[-1] == "6 passed, 0 failed"
    assert "FAIL" not in done.stdout
    assert stack["bot_token"] not in done.stdout + done.stderr


def test_the_smoke_test_fails_loudly_on_a_broken_stage(stack: dict[str, Any]) -> None:
    # Given a token the stage does not know (as after a deploy that lost the tokens), and a stage that is not there
    bad_token = smoke("--base-url", stack["api_url"], "--token", "not-a-token-of-this-stage")
    no_stage = smoke("--base-url", "http://127.0.0.1:9", "--token", stack["bot_token"], "--timeout", "2")

    # Then the authorized checks fail by name and it exits 1; a stage that does not answer fails every check
    assert bad_token.returncode == 1
    failed = [line for line in bad_token.stdout.splitlines() if line.startswith("FAIL")]
    assert [line.split(":")[0] for line in failed] == ["FAIL who the token is", "FAIL live calls (read API)"]
    assert no_stage.returncode == 1
    assert no_stage.stdout.splitlines()[-1] == "0 passed, 6 failed"


def test_the_smoke_test_reads_the_local_stack_file(stack: dict[str, Any], tmp_path: Any) -> None:
    # Given the stack file `make run` writes; When the smoke test is given only that file
    stack_file = tmp_path / "stack.json"
    stack_file.write_text(json.dumps({"api_url": stack["api_url"], "bot_token": stack["bot_token"]}))
    done = smoke("--stack-file", str(stack_file))

    # Then it finds the URL and token there
    assert done.returncode == 0, done.stdout + done.stderr
