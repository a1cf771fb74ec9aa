"""Human-readable lines appended to the client's dialog about a call (Russian, as the operators read them).

`Звонок завершён · входящий · 02:35 · сотрудник 346 · группа 3 · запись: https://...`
`Звонок завершён · входящий · 01:10 · перехвачен · переведён · сотрудник 347` (ZEON's `pickedup`, `transfered`)
"""

from __future__ import annotations

import re

from iptelefon.domain.call_aliases import CanonicalCall
from iptelefon.domain.call_record import CallRecord, CallStatus, Direction

SEPARATOR = " · "
CALL_FINISHED = "Звонок завершён"
PICKED_UP = "перехвачен"
TRANSFERRED = "переведён"

_DIRECTION_WORDS: dict[Direction, str] = {"in": "входящий", "out": "исходящий"}
# Shown instead of the duration when the call was not answered.
_STATUS_WORDS: dict[CallStatus, str] = {"missed": "пропущен", "busy": "занято", "failed": "не состоялся"}
_WHITESPACE = re.compile(r"\s+")


def format_call_notification(call: CanonicalCall | CallRecord) -> str:
    """One line: direction, duration (or why there was no talk), employee, group, recording link."""
    parts = [CALL_FINISHED]
    if call.direction is not None:
        parts.append(_DIRECTION_WORDS[call.direction])
    if call.status == "answered":
        parts.append(format_duration(call.talk_seconds))
    else:
        parts.append(_STATUS_WORDS[call.status])
    if call.picked_up:  # another extension took the ringing call
        parts.append(PICKED_UP)
    if call.transferred:
        parts.append(TRANSFERRED)
    if call.employee:
        parts.append(f"сотрудник {_one_line(call.employee)}")
    if call.group_id:
        parts.append(f"группа {_one_line(call.group_id)}")
    if call.record_link:  # our stable link when there is one: it outlives the PBX's (issue 25)
        stable = call.recording_link if isinstance(call, CallRecord) else None
        parts.append(f"запись: {stable or call.record_link}")
    return SEPARATOR.join(parts)


def format_duration(seconds: int) -> str:
    """`mm:ss` under an hour (`02:35`), `h:mm:ss` from an hour on (`1:02:05`)."""
    hours, rest = divmod(max(seconds, 0), 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}:{minutes:02d}:{secs:02d}"
    return f"{minutes:02d}:{secs:02d}"


def _one_line(text: str) -> str:
    # PBX-sent text goes into a one-line message: no line breaks or tabs from the payload.
    return _WHITESPACE.sub(" ", text).strip()
