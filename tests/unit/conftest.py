"""Unit tests: pure logic and in-memory fakes. No moto, no network, no process: `isolated` fails a test that tries."""

from __future__ import annotations

import pytest
from fixtures.isolation import guard


@pytest.fixture(autouse=True)
def isolated(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    guard(request, monkeypatch)
