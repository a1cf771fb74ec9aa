"""Run by the runtime's Python (`python3.13 tests/contract/pyc_check.py <folder>`): prints, as JSON, what is wrong
with the bytecode of every .py under the folder. The magic number and the source hash are the interpreter's own, so
the check means the runtime's version whatever Python runs pytest. Standard library only."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

# PEP 552 flags: bit 0 = hash-based, bit 1 = check the source. Unchecked-hash: only bit 0.
UNCHECKED_HASH_FLAGS = 0b01


def problems(folder: Path) -> list[str]:
    found = []
    for source in sorted(p for p in folder.rglob("*.py") if p.is_file()):
        pyc = Path(importlib.util.cache_from_source(str(source)))
        if not pyc.is_file():
            found.append(f"{source.relative_to(folder)}: no {pyc.name}")
            continue
        header = pyc.read_bytes()[:16]
        if header[:4] != importlib.util.MAGIC_NUMBER:
            found.append(f"{pyc.relative_to(folder)}: compiled by another Python version")
        elif int.from_bytes(header[4:8], "little") != UNCHECKED_HASH_FLAGS:
            found.append(f"{pyc.relative_to(folder)}: not unchecked-hash")
        elif header[8:16] != importlib.util.source_hash(source.read_bytes()):
            found.append(f"{pyc.relative_to(folder)}: compiled from another source (stale)")
    return found


if __name__ == "__main__":
    print(json.dumps({"modules": len(list(Path(sys.argv[1]).rglob("*.py"))), "problems": problems(Path(sys.argv[1]))}))
