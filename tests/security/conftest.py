"""Security: the real handlers on moto in-process, two projects side by side, the PBX a double."""

from __future__ import annotations

from fixtures.pbx import fake_pbx
from fixtures.projects import admin_target, lambda_context, other_project, project

__all__ = ["admin_target", "fake_pbx", "lambda_context", "other_project", "project"]
