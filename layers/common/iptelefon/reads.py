"""What a bot or operator may read: clients and calls of its own project only."""

from __future__ import annotations

from typing import Any

from iptelefon.errors import NotImplementedYet
from iptelefon.models import Project


def clients_by_phone(project: Project, phone: str) -> dict[str, Any]:
    raise NotImplementedYet("client lookup is not implemented yet")


def client_card(project: Project, client_id: str) -> dict[str, Any]:
    raise NotImplementedYet("client cards are not implemented yet")


def calls_of_client(project: Project, client_id: str) -> dict[str, Any]:
    raise NotImplementedYet("call listing is not implemented yet")


def call_record(project: Project, call_id: str) -> dict[str, Any]:
    raise NotImplementedYet("call records are not implemented yet")
