"""The incoming-call card's client (issue 22): who calls, taken once, when the call's first live event is stored.

It rides on the live call (`domain.live_calls.ClientSnapshot`), so `GET /v1/calls/live` stays one Query of the
project's live calls and reads nothing per call. A client the event has just created needs no read (no name, no
dialog); a known one costs a GetItem (its name) and a Query of its last dialog lines, on the first event only.
"""

from __future__ import annotations

from iptelefon.domain.live_calls import CARD_DIALOG_LINES, ClientSnapshot, snapshot_of
from iptelefon.domain.models import Project
from iptelefon.usecases.ports import CallRecords, Clients


def client_snapshot(
    clients: Clients, calls: CallRecords, project: Project, client_id: str, phone: str, *, created: bool
) -> ClientSnapshot:
    if created:
        return snapshot_of(None, (), phone=phone, created=True, name_variables=project.name_variables)
    client = clients.get(project.id, client_id)
    dialog = calls.dialog(project.id, client_id, limit=CARD_DIALOG_LINES)
    return snapshot_of(client, dialog, phone=phone, created=False, name_variables=project.name_variables)
