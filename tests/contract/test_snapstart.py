"""SnapStart priming (`iptelefon.platform.snapstart`): the first request's set-up runs before Lambda's snapshot, only
in a SnapStart init, and opens no connection (a snapshot may be resumed hours later)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from devstack.template import ROOT, Template
from iptelefon.platform import snapstart

TEMPLATE = Template(parameters={"Stage": "test"})
PRIMED = [
    "WebhookFunction",
    "InboxFunction",
    "EmployeeCallFunction",
    "GroupCallFunction",
    "ReadApiFunction",
    "AdminApiFunction",
]


def test_an_on_demand_init_primes_nothing_and_never_loads_the_hook_library(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given an init that is not SnapStart's (the library is not even there)
    monkeypatch.delenv("AWS_LAMBDA_INITIALIZATION_TYPE", raising=False)
    monkeypatch.setitem(sys.modules, "snapshot_restore_py", None)  # importing it would raise
    ran: list[str] = []

    # When a handler asks for priming
    primed = snapstart.prime_before_snapshot(lambda: ran.append("warm"))

    # Then nothing is registered or run: the work would only lengthen this cold start
    assert primed is False
    assert ran == []


# A stand-in for Lambda's snapshot_restore_py: records the hooks; the test runs them as Lambda would.
FAKE_LIBRARY = "hooks = []\ndef register_before_snapshot(func, *args, **kwargs):\n    hooks.append(func)\n"

CHILD = textwrap.dedent(
    """
    import importlib, json, sys, socket
    import snapshot_restore_py
    connections = []
    real_connect = socket.socket.connect
    def connect(self, address):
        connections.append(str(address))
        return real_connect(self, address)
    socket.socket.connect = connect
    importlib.import_module(sys.argv[1])
    before = set(sys.modules)
    for hook in reversed(snapshot_restore_py.hooks):  # Lambda runs them in reverse order of registration
        hook()
    from iptelefon.data.gateway import get_storage
    print(json.dumps({"hooks": len(snapshot_restore_py.hooks), "loaded": sorted(set(sys.modules) - before),
                      "storage_built": get_storage.cache_info().currsize, "connections": connections}))
    """
)


def run_init(logical_id: str, library_dir: Path) -> dict[str, Any]:
    spec = TEMPLATE.functions()[logical_id]
    env = {
        **spec.environment,
        "PATH": os.environ["PATH"],
        "PYTHONPATH": os.pathsep.join([str(library_dir), str(spec.code_dir), str(ROOT / "layers" / "common")]),
        "AWS_LAMBDA_INITIALIZATION_TYPE": "snap-start",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_ENDPOINT_URL": "http://127.0.0.1:9",  # nothing listens: a call would fail, and is recorded anyway
    }
    module = spec.handler.rpartition(".")[0]
    done = subprocess.run(
        [sys.executable, "-c", CHILD, module], env=env, capture_output=True, text=True, timeout=60, check=True
    )
    return dict(json.loads(done.stdout))


@pytest.mark.parametrize("logical_id", PRIMED)
def test_a_snapstart_init_primes_the_first_requests_set_up_without_a_connection(
    logical_id: str, tmp_path: Path
) -> None:
    # Given a SnapStart init of the function (Lambda's hook library stood in for)
    (tmp_path / "snapshot_restore_py.py").write_text(FAKE_LIBRARY)

    # When its handler is imported and the hooks run, as before Lambda's snapshot
    report = run_init(logical_id, tmp_path)

    # Then the hooks built what the first request would have (storage and AWS clients: modules load), and nothing
    # connected anywhere (no secret or connection is frozen in the snapshot)
    assert report["hooks"] >= 1
    assert report["storage_built"] == 1, "priming built no storage (DynamoDB client)"
    assert report["loaded"], "priming loaded nothing the handler's import had not"
    assert report["connections"] == []


def test_snapstart_is_a_template_parameter_off_by_default() -> None:
    parameter = TEMPLATE.doc["Parameters"]["SnapStart"]
    assert parameter["Default"] == "None"
    assert sorted(parameter["AllowedValues"]) == ["None", "PublishedVersions"]
    assert TEMPLATE.doc["Globals"]["Function"]["SnapStart"] == {"ApplyOn": {"Ref": "SnapStart"}}
    assert TEMPLATE.doc["Globals"]["Function"]["AutoPublishAlias"]  # SnapStart snapshots published versions
