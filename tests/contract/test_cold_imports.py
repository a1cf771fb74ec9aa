"""What each function imports at a cold start, as Lambda loads it: only the rooms its use case uses.

A fresh interpreter imports one handler the way Lambda's runtime does (the layer and the function's folder on the
path, nothing else) and lists what got loaded. Each import costs cold-start time: Powertools Idempotency ~40 ms (it
loads only when a request carries an `Idempotency-Key`), httpx ~30 ms (only the functions that talk to the PBX), the
SQS inbox only where a webhook may be queued.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
IDEMPOTENCY = "aws_lambda_powertools.utilities.idempotency"


def loaded_by(function: str) -> set[str]:
    script = f"import json, sys; import {function}.handler; print(json.dumps(sorted(sys.modules)))"
    paths = [ROOT / "layers/common", ROOT / "functions" / function]
    env = {"PYTHONPATH": ":".join(map(str, paths)), "PATH": "/usr/bin:/bin", "AWS_DEFAULT_REGION": "us-east-1"}
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True)
    return set(json.loads(out.stdout))


def loaded_packages(modules: set[str], *prefixes: str) -> list[str]:
    return sorted(p for p in prefixes if any(m == p or m.startswith(p + ".") for m in modules))


@pytest.mark.parametrize("function", ["employee_call", "group_call"])
def test_the_call_functions_load_idempotency_only_when_a_key_comes(function: str) -> None:
    assert loaded_packages(loaded_by(function), IDEMPOTENCY) == []


@pytest.mark.parametrize("function", ["webhook", "inbox"])
def test_the_webhook_loads_no_pbx_client_and_no_call_rules(function: str) -> None:
    modules = loaded_by(function)
    unwanted = ("httpx", "iptelefon.adapters", "iptelefon.usecases.calls", "iptelefon.usecases.admin", IDEMPOTENCY)
    assert loaded_packages(modules, *unwanted) == []


@pytest.mark.parametrize("function", ["employee_call", "group_call", "read_api", "admin_api"])
def test_the_api_functions_load_no_inbox_and_no_webhook_decoder(function: str) -> None:
    modules = loaded_by(function)
    unwanted = ("iptelefon.data.inbox", "iptelefon.usecases.webhook", "iptelefon.domain.webhook_body")
    assert loaded_packages(modules, *unwanted) == []
