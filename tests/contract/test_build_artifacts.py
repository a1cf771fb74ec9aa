"""The artifacts `make build` leaves in .aws-sam/build ship bytecode for the runtime's exact Python.

A layer lives on a read-only path (/opt/python): a module without its .pyc there is compiled again on every cold
start. So every .py of the layer and of each function has `__pycache__/<name>.cpython-3XX.pyc` compiled from that very
source, unchecked-hash (a zip's timestamps never invalidate it), and the zip `sam package` makes of a folder holds them.
`make test` runs `make build` before pytest; run `make build` first when calling pytest alone.
"""

from __future__ import annotations

import json
import subprocess
import zipfile
from pathlib import Path

import pytest

from devstack.runtime_python import runtime_python
from devstack.template import ROOT, Template

BUILD = ROOT / ".aws-sam" / "build"
SAM_PYTHON = ROOT / ".venv-tools" / "bin" / "python"
TEMPLATE = Template()
RUNTIME = TEMPLATE.doc["Globals"]["Function"]["Runtime"]  # e.g. python3.13
RUNTIME_VERSION = RUNTIME.removeprefix("python")
CACHE_TAG = "cpython-" + RUNTIME_VERSION.replace(".", "")
ARTIFACTS = sorted([*TEMPLATE.resources("AWS::Serverless::LayerVersion"), *TEMPLATE.functions()])
# Lambda's arm64 is aarch64 Linux; a compiled extension must be built for it and for the runtime's ABI.
ARCH = {"arm64": "aarch64", "x86_64": "x86_64"}[TEMPLATE.doc["Globals"]["Function"]["Architectures"][0]]


def artifact_dir(logical_id: str) -> Path:
    folder = BUILD / logical_id
    assert folder.is_dir(), f"{folder} not found: run `make build` first"
    return folder


def the_runtimes_python() -> str:
    found = runtime_python(RUNTIME)
    assert found, f"{RUNTIME} not found: the bytecode is checked by the runtime's own interpreter"
    return found


def test_the_runtime_is_a_lambda_python_and_its_interpreter_is_here() -> None:
    # Given the template's Runtime
    # When its interpreter is looked up (PATH, then pyenv) and asked its version
    answer = subprocess.run(
        [the_runtimes_python(), "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
        capture_output=True,
        text=True,
        check=True,
    )

    # Then it is that very version (the layer, the functions and the tests all agree on 3.13)
    assert RUNTIME == "python3.13"
    assert answer.stdout.strip() == RUNTIME_VERSION
    (layer,) = TEMPLATE.resources("AWS::Serverless::LayerVersion").values()
    assert layer["Properties"]["CompatibleRuntimes"] == [RUNTIME]
    assert layer["Metadata"]["BuildMethod"] == RUNTIME


@pytest.mark.parametrize("logical_id", ARTIFACTS)
def test_every_module_has_unchecked_hash_bytecode_of_its_own_source(logical_id: str) -> None:
    # Given the built folder of a function or of the layer
    folder = artifact_dir(logical_id)

    # When the runtime's interpreter reads each .py's bytecode (its magic number, flags, source hash)
    answer = subprocess.run(
        [the_runtimes_python(), str(Path(__file__).with_name("pyc_check.py")), str(folder)],
        capture_output=True,
        text=True,
        check=True,
    )
    report = json.loads(answer.stdout)

    # Then every one is there, for that interpreter, unchecked-hash, and of the source it sits next to
    assert report["modules"] > 0, f"{logical_id}: no Python module in the build"
    assert report["problems"] == []


def test_the_layers_compiled_wheels_are_for_the_runtime_and_its_architecture() -> None:
    # Given the layer's compiled extensions (pydantic-core at least)
    extensions = sorted(artifact_dir("CommonLayer").rglob("*.so"))
    assert any(p.name.startswith("_pydantic_core.") for p in extensions)

    # When their file names (the ABI tag pip chose) are read
    wrong = [p.name for p in extensions if not p.name.endswith(f".{CACHE_TAG}-{ARCH}-linux-gnu.so")]

    # Then each is CPython of the runtime's version, for Lambda's architecture (not this machine's)
    assert wrong == []


@pytest.mark.parametrize("logical_id", ["CommonLayer", "WebhookFunction"])
def test_the_zip_sam_deploys_holds_the_bytecode(logical_id: str, tmp_path: Path) -> None:
    # Given a built folder and its bytecode
    folder = artifact_dir(logical_id)
    built = {p.relative_to(folder).as_posix() for p in folder.rglob(f"*.{CACHE_TAG}.pyc")}
    assert built

    # When SAM CLI's own packaging zips it (what `sam package` / `sam deploy` upload)
    zip_path = subprocess.run(
        [
            str(SAM_PYTHON),
            "-c",
            "import sys; from samcli.lib.package.utils import make_zip; print(make_zip(sys.argv[1], sys.argv[2]))",
            str(tmp_path / logical_id),
            str(folder),
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    with zipfile.ZipFile(zip_path) as archive:
        zipped = {name for name in archive.namelist() if name.endswith(f".{CACHE_TAG}.pyc")}

    # Then the zip has every .pyc at the same place
    assert zipped == built
