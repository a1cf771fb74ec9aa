"""Does every rule have a test that fails without it? Delete each rule in a copy of the code and run its tests.

`make rule-check` (not part of `make test`: it runs the named tests once per rule, a few minutes). For each rule
below, the committed code (`git archive HEAD`) is unpacked into a temporary folder, the rule's lines are replaced by
what the code would be without the rule, and the tests named for it run there. A rule is **caught** when those tests
fail with the rule deleted; the script first checks that the snippet is really in the code (a renamed rule fails the
check loudly instead of passing unnoticed) and that the same tests pass on the untouched copy.
"""

from __future__ import annotations

import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LAYER = "layers/common/iptelefon"


@dataclass(frozen=True)
class Rule:
    name: str
    path: str
    code: str  # the rule as it stands in the file (exactly once)
    without: str  # the code without the rule
    tests: tuple[str, ...]  # pytest node ids or files expected to catch its deletion


RULES: tuple[Rule, ...] = (
    Rule(
        "an operator token calls as its own employee only",
        f"{LAYER}/usecases/calls.py",
        """        if request.employee_id not in (None, caller.employee_id):
            raise Forbidden("an operator token calls as its own employee only")
""",
        "",
        ("tests/integration/test_admin_api.py",),
    ),
)


def unpack_head(into: Path) -> None:
    git = ["git", "archive", "HEAD"]  # the developer's git, from PATH
    archive = subprocess.run(git, cwd=ROOT, capture_output=True, check=True).stdout
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")


def run_tests(copy: Path, tests: tuple[str, ...]) -> subprocess.CompletedProcess[str]:
    # The copy's own pyproject.toml puts the copy's layer and functions first on sys.path.
    command = [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", "--no-header", *tests]
    return subprocess.run(command, cwd=copy, capture_output=True, text=True, check=False)


def check(rule: Rule, base: Path) -> tuple[bool, str]:
    """(caught, what to say) for one rule, in a fresh copy."""
    with tempfile.TemporaryDirectory(dir=base) as folder:
        copy = Path(folder)
        unpack_head(copy)
        source = copy / rule.path
        text = source.read_text(encoding="utf-8")
        if text.count(rule.code) != 1:
            return False, f"the rule's code is not exactly once in {rule.path}: update RULES"
        untouched = run_tests(copy, rule.tests)
        if untouched.returncode != 0:
            return False, "its tests fail on the untouched code:\n" + untouched.stdout[-2000:]
        source.write_text(text.replace(rule.code, rule.without), encoding="utf-8")
        deleted = run_tests(copy, rule.tests)
        failed = [line for line in deleted.stdout.splitlines() if line.startswith(("FAILED", "ERROR"))]
        if deleted.returncode == 0:
            return False, "NOT CAUGHT: its tests pass without the rule"
        return True, "caught by " + ("; ".join(failed) or deleted.stdout.strip().splitlines()[-1])


def main() -> int:
    missed = 0
    with tempfile.TemporaryDirectory(prefix="rule-check-") as base:
        for number, rule in enumerate(RULES, 1):
            caught, said = check(rule, Path(base))
            missed += not caught
            print(f"{number:2}. {rule.name}: {said}", flush=True)
    print(f"{len(RULES) - missed} of {len(RULES)} rules caught")
    return 1 if missed or not RULES else 0


if __name__ == "__main__":
    sys.exit(main())
