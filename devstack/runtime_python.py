"""Where the Lambda runtime's Python (template.yaml's Runtime, e.g. python3.13) is on this machine.

`make build` compiles the bytecode with it and puts its folder first on SAM's PATH (SAM builds the layer for that
version); the bench runs the functions with it; the build test reads its bytecode magic. On PATH first; else pyenv's
own install of that version (pyenv's shim answers only for the versions selected in `pyenv global`/`local`).
Standard library only: the Makefile runs it with any python3 (`python3 devstack/runtime_python.py python3.13`).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path


def candidates(runtime: str) -> list[str]:
    version = runtime.removeprefix("python")
    found = [shutil.which(runtime) or ""]
    pyenv_root = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv")
    found += sorted(str(p) for p in pyenv_root.glob(f"versions/{version}.*/bin/{runtime}"))
    return [p for p in found if p]


def runtime_python(runtime: str) -> str | None:
    """The real interpreter (sys.executable, not a shim: the bench must not time a shim's start) of `runtime`."""
    version = runtime.removeprefix("python")
    for candidate in candidates(runtime):
        answer = subprocess.run(
            [candidate, "-c", "import sys; print(sys.executable, '%d.%d' % sys.version_info[:2])"],
            capture_output=True,
            text=True,
            check=False,
        )
        executable, _, actual = answer.stdout.strip().rpartition(" ")
        if answer.returncode == 0 and actual == version:
            return executable
    return None


if __name__ == "__main__":
    name = sys.argv[1]
    path = runtime_python(name)
    if path is None:
        sys.exit(f"{name} not found (on PATH or in pyenv): the build compiles bytecode with the runtime's Python")
    print(path)
