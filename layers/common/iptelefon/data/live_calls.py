"""Calls while they are live (ZEON's `cmd=event`), in DynamoDB: `LiveCallStore`, the `ports.LiveCalls` of the webhook
and the reads.

  PROJECT#<pid> / LIVE#<call key>     a call's live state (`LiveCall`: ringing / answered / ended, its client, the
                                      extension, since when), `version` (one more with each write), `expires_at` (TTL:
                                      the last event + LIVE_SECONDS). While ringing or answered it is also in gsi1:
                                      gsi1pk = LIVE#<pid>, gsi1sk = <since>#<call key>; `ended` takes it out.

The project's calls now are one Query on gsi1 (`LIVE#<pid>`): it reads the live calls of that project and nothing
else, never a scan. An `ended` item stays (until its TTL) so that an event that comes after the call's `history`
finds it and changes nothing. The webhook decides every state (`domain.live_calls`); this module keeps what it is
handed: a write names the version it replaces, so concurrent events of one call never overwrite each other unseen,
and an end is written whatever came before.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from iptelefon.data.event_items import outbox_write
from iptelefon.data.gateway import ConditionFailed, Storage, project_pk, put, update
from iptelefon.domain.live_calls import LiveCall
from iptelefon.domain.models import is_valid_id, utc_stamp

if TYPE_CHECKING:
    from iptelefon.domain.call_events import CallEvent

LIVE_PREFIX = "LIVE#"
# More calls than this ringing at once in one project is not a telephone exchange's day: the list stops there.
MAX_LISTED = 500
CHANGED_MEANWHILE = "live call changed meanwhile"


def live_sk(call_key: str) -> str:
    return f"{LIVE_PREFIX}{call_key}"


def live_index_pk(project_id: str) -> str:
    return f"{LIVE_PREFIX}{project_id}"


class LiveCallStore:
    def __init__(self, storage: Storage) -> None:
        self._storage = storage

    def get(self, project_id: str, call_key: str) -> LiveCall | None:
        if not is_valid_id(call_key):  # every call key is one (`call_record.call_key_for`)
            return None
        item = self._storage.get(project_pk(project_id), live_sk(call_key))
        return LiveCall.model_validate(item) if item else None

    def put(
        self, project_id: str, live: LiveCall, *, replacing: LiveCall | None, events: Sequence[CallEvent] = ()
    ) -> bool:
        """Store `live` (ringing or answered) in place of `replacing` (None: the call had no item), with its `events`
        in the same transaction (the outbox). False when the item is not what `replacing` was any more (another event
        or the call's end came meanwhile): read again, and nothing was written."""
        item = {
            **_item(project_id, live),
            "gsi1pk": live_index_pk(project_id),
            "gsi1sk": f"{utc_stamp(live.since)}#{live.call_key}",
        }
        if replacing is None:
            write = put(item, only_if="attribute_not_exists(pk)", label=CHANGED_MEANWHILE)
        else:
            write = put(
                item,
                only_if="#version = :seen",
                names={"#version": "version"},
                values={":seen": replacing.version},
                label=CHANGED_MEANWHILE,
            )
        try:
            if events:
                self._storage.transact([write, *(outbox_write(event) for event in events)])
            else:
                self._storage.write(write)
        except ConditionFailed:
            return False
        return True

    def end(self, project_id: str, ended: LiveCall) -> None:
        """The call's `history` came: `ended` replaces whatever live state it had (or stands alone: an event that
        comes later finds it), out of the project's calls now. Written whatever the version was: it wins over any
        event in flight, whose own write then fails and reads this."""
        fields = {
            name: value for name, value in _item(project_id, ended).items() if name not in ("pk", "sk", "version")
        }
        names = {f"#{i}": name for i, name in enumerate(fields)}
        values: dict[str, Any] = {f":{i}": value for i, value in enumerate(fields.values())}
        assignments = ", ".join(f"#{i} = :{i}" for i in range(len(fields)))
        self._storage.write(
            update(
                project_pk(project_id),
                live_sk(ended.call_key),
                f"SET {assignments}, #version = if_not_exists(#version, :zero) + :one REMOVE gsi1pk, gsi1sk",
                names={**names, "#version": "version"},
                values={**values, ":zero": 0, ":one": 1},
            )
        )

    def of_project(self, project_id: str) -> list[LiveCall]:
        """The project's ringing and answered calls, the longest-standing first (expired ones too, until TTL takes
        them: the reader filters by `LiveCall.is_live`)."""
        items = self._storage.query(live_index_pk(project_id), limit=MAX_LISTED, index="gsi1")
        return [LiveCall.model_validate(item) for item in items]


def _item(project_id: str, live: LiveCall) -> dict[str, Any]:
    return {
        "pk": project_pk(project_id),
        "sk": live_sk(live.call_key),
        "type": "live_call",
        **live.model_dump(mode="json", exclude_none=True),
        "version": live.version + 1,
        "expires_at": int(live.expires_at.timestamp()),
    }
