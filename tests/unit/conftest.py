"""Unit tests: pure logic and in-memory fakes."""

from __future__ import annotations

from fixtures.pbx import fake_pbx
from fixtures.projects import admin_target, lambda_context, other_project, project

# test_calls.py keeps moto tests (and the fixtures above) until the calls use case's split (issue 14) moves them to
# integration/: then the imports go.
__all__ = ["admin_target", "fake_pbx", "lambda_context", "other_project", "project"]
