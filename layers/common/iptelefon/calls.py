"""Starting calls on the PBX for bots and from the client card (contract sections 1 and 3)."""

from __future__ import annotations

from typing import Any

from iptelefon.errors import NotImplementedYet
from iptelefon.models import ClientCardCallRequest, EmployeeCallRequest, GroupCallRequest, Project


def start_employee_call(
    project: Project, request: EmployeeCallRequest, *, idempotency_key: str | None
) -> dict[str, Any]:
    raise NotImplementedYet("employee calls are not implemented yet")


def start_group_call(project: Project, request: GroupCallRequest, *, idempotency_key: str | None) -> dict[str, Any]:
    raise NotImplementedYet("group calls are not implemented yet")


def call_from_client_card(
    project: Project, client_id: str, request: ClientCardCallRequest, *, idempotency_key: str | None
) -> tuple[int, dict[str, Any]]:
    raise NotImplementedYet("calls from the client card are not implemented yet")
