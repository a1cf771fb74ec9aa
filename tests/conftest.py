"""What every folder needs: the test environment, set before any handler reads its settings, and in-process AWS for
the whole run (`aws`, in fixtures/aws.py: a session fixture is registered here, once). Each folder's conftest holds
the rest."""

from __future__ import annotations

import os

import pytest

pytest_plugins = ["fixtures.aws", "pytester"]  # pytester: test_isolation.py runs pytest on the unit folder's guard


def pytest_configure(config: pytest.Config) -> None:
    # Settings are read once, on first use: the environment must be right before any test imports a handler.
    from fixtures.aws import TEST_ENV  # here, not above: pytest_plugins imports the module first (assert rewriting)

    os.environ.pop("AWS_ENDPOINT_URL", None)
    os.environ.pop("AWS_PROFILE", None)
    os.environ.update(TEST_ENV)


@pytest.fixture(scope="session", autouse=True)
def _hypothesis_prints_failing_examples() -> None:
    """schemathesis' pytest plugin (loaded for every run once it is installed) swaps Hypothesis' printer for one that
    prints nothing, a speed-up for its own CLI: a failing example of ANY property test would show up blank. Hypothesis'
    printer runs only for a failing or verbose example, so its own one is put back for the whole session."""
    from hypothesis import core
    from hypothesis.vendor import pretty

    core.RepresentationPrinter = pretty.RepresentationPrinter  # type: ignore[misc]
