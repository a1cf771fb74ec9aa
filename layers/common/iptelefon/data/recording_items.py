"""The layout of a recording's item (issue 25), written by both `call_records` (in the call's transaction) and
`recordings` (the copier):

  RECORDING#<recording id> / RECORDING     project, call key, the PBX's link, state (pending / archived / failed);
                                           while pending also gsi1: RECORDING#PENDING / <created>#<recording id> (a
                                           sparse index: the sweep reads only the pending ones, never a scan)
"""

from __future__ import annotations

from iptelefon.data.gateway import Write, put
from iptelefon.domain.call_record import CallRecord
from iptelefon.domain.models import utc_now, utc_stamp
from iptelefon.domain.recordings import Recording

RECORDING_SK = "RECORDING"
PENDING_PK = "RECORDING#PENDING"


def recording_pk(recording_id: str) -> str:
    return f"RECORDING#{recording_id}"


def recording_writes(project_id: str, call: CallRecord) -> list[Write]:
    """The recording item a call's link brings (none without one), for the call's own transaction."""
    if not (call.recording_id and call.record_link):
        return []
    created = utc_now()  # when the link arrived (a later webhook's link: not when the call did)
    item = {
        "pk": recording_pk(call.recording_id),
        "sk": RECORDING_SK,
        "type": "recording",
        **Recording(
            recording_id=call.recording_id,
            project_id=project_id,
            call_key=call.call_key,
            source_link=call.record_link,
            created_at=created,
        ).model_dump(mode="json"),
        "gsi1pk": PENDING_PK,
        "gsi1sk": f"{utc_stamp(created)}#{call.recording_id}",
    }
    return [put(item, only_if="attribute_not_exists(pk)")]
