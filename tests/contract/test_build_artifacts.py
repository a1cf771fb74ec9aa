"""The artifacts `make build` leaves in .aws-sam/build ship bytecode for the runtime's exact Python.

A layer lives on a read-only path (/opt/python): a module without its .pyc there is compiled again on every cold
start. So every .py of the layer and of each function has `__pycache__/<name>.cpython-3XX.pyc` compiled from that very
source, unchecked-hash (a zip's timestamps never invalidate it), and the zip `sam package` makes of a folder holds them.
`make test` runs `make build` before pytest; run `make build` first when calling pytest alone.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from devstack.template import ROOT, Template

BUILD = ROOT / ".aws-sam" / "build"
SAM_PYTHON = ROOT / ".venv-tools" / "bin" / "python"
TEMPLATE = Template()
RUNTIME = TEMPLATE.doc["Globals"]["Function"]["Runtime"]  # e.g. python3.11
RUNTIME_VERSION = tuple(int(n) for n in RUNTIME.removeprefix("python").split("."))
CACHE_TAG = "cpython-" + "".join(str(n) for n in RUNTIME_VERSION)
# PEP 552 flags: bit 0 = hash-based, bit 1 = check the source. Unchecked-hash: only bit 0.
UNCHECKED_HASH_FLAGS = 0b01
ARTIFACTS = sorted([*TEMPLATE.resources("AWS::Serverless::LayerVersion"), *TEMPLATE.functions()])


def artifact_dir(logical_id: str) -> Path:
    folder = BUILD / logical_id
    assert folder.is_dir(), f"{folder} not found: run `make build` first"
    return folder


def sources(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*.py") if p.is_file())


def expected_pyc(source: Path) -> Path:
    return source.parent / "__pycache__" / f"{source.stem}.{CACHE_TAG}.pyc"


def test_the_tests_run_on_the_runtimes_python() -> None:
    # The magic number below is this interpreter's: it must be the runtime's minor version for the checks to mean it.
    assert sys.version_info[:2] == RUNTIME_VERSION, f"run the tests with {RUNTIME} (the Lambda runtime)"


@pytest.mark.parametrize("logical_id", ARTIFACTS)
def test_every_module_has_unchecked_hash_bytecode_of_its_own_source(logical_id: str) -> None:
    # Given the built folder of a function or of the layer
    modules = sources(artifact_dir(logical_id))
    assert modules, f"{logical_id}: no Python module in the build"

    # When each .py's bytecode for the runtime's interpreter is read
    problems = []
    for source in modules:
        pyc = expected_pyc(source)
        if not pyc.is_file():
            problems.append(f"{source.relative_to(BUILD)}: no {pyc.name}")
            continue
        header = pyc.read_bytes()[:16]
        if header[:4] != importlib.util.MAGIC_NUMBER:
            problems.append(f"{pyc.relative_to(BUILD)}: compiled by another Python version")
        elif int.from_bytes(header[4:8], "little") != UNCHECKED_HASH_FLAGS:
            problems.append(f"{pyc.relative_to(BUILD)}: not unchecked-hash")
        elif header[8:16] != importlib.util.source_hash(source.read_bytes()):
            problems.append(f"{pyc.relative_to(BUILD)}: compiled from another source (stale)")

    # Then every one is there, for this interpreter, unchecked-hash, and of the source it sits next to
    assert problems == []


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
