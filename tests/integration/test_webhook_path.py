"""The webhook's path through the layer's rooms goes one way: no module is re-entered from below.

While the real handler runs (moto in-process), a profiler looks at every call into the layer (`iptelefon.*`) or the
handler (`webhook.*`) and collapses the call stack to the modules on it. A stack that holds one module twice with
another between (`data.call_records → data.clients → data.call_records`) is a re-entry: the reader following a webhook
from the handler to DynamoDB would have to go back into a file already left. Calls that return are not re-entries:
a use case calls one repository after another; nor is a generator expression iterated by the callee it was handed to.
"""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import FrameType
from typing import Any

from fixtures.projects import PBX_SECRET
from support import answer_json, api_event, webhook_event

from iptelefon.data.call_records import RECORD_LINK_VARIABLE
from iptelefon.data.clients import ClientStore
from iptelefon.data.gateway import get_storage
from iptelefon.domain.models import Client
from webhook.handler import lambda_handler

PHONE = "79004443322"

OWN_CODE = ("iptelefon.", "webhook.")


def _own_module(frame: FrameType) -> str | None:
    if frame.f_code.co_name == "<genexpr>":  # data handed to a callee that iterates it, not a step into the module
        return None
    name = str(frame.f_globals.get("__name__", ""))
    return name if name.startswith(OWN_CODE) else None


def _modules_on_stack(frame: FrameType | None) -> list[str]:
    """The own modules on the stack, outermost first, each run of frames of one module counted once."""
    chain: list[str] = []
    while frame is not None:
        module = _own_module(frame)
        if module is not None and (not chain or chain[-1] != module):
            chain.append(module)
        frame = frame.f_back
    return chain[::-1]


def _is_repository(module: str) -> bool:
    if not module.startswith("iptelefon.data."):
        return False
    return any(name.endswith("Store") and isinstance(value, type) for name, value in vars(sys.modules[module]).items())


@dataclass
class Path:
    reentries: set[str] = field(default_factory=set)  # stacks that hold a module twice
    steps: set[tuple[str, str]] = field(default_factory=set)  # (caller module, callee module)
    entries: Counter[str] = field(default_factory=Counter)  # how often each module was stepped into

    def repositories_entered_from_below(self) -> list[tuple[str, str]]:
        """Steps into a repository (a data module with a `...Store` class) from anywhere but a use case or the
        composition root that builds it: one repository calling another, say."""
        callers = ("iptelefon.usecases.", "iptelefon.entry.dependencies")
        return sorted((a, b) for a, b in self.steps if _is_repository(b) and not a.startswith(callers))

    def storage_steps_into(self, *domain_modules: str) -> list[tuple[str, str]]:
        """Steps from data access into these domain modules (storage that parses requests or words notifications)."""
        wanted = {f"iptelefon.domain.{name}" for name in domain_modules}
        return sorted((a, b) for a, b in self.steps if a.startswith("iptelefon.data.") and b in wanted)


@contextmanager
def watching_the_path() -> Iterator[Path]:
    path = Path()

    def profile(frame: FrameType, event: str, _arg: Any) -> None:
        if event != "call" or _own_module(frame) is None:
            return
        chain = _modules_on_stack(frame)
        if len(chain) != len(set(chain)):
            path.reentries.add(" → ".join(chain))
        caller = _modules_on_stack(frame.f_back)
        if caller and caller[-1] != chain[-1]:
            path.steps.add((caller[-1], chain[-1]))
            path.entries[chain[-1]] += 1

    sys.setprofile(profile)
    try:
        yield path
    finally:
        sys.setprofile(None)


def test_no_module_is_reentered_on_the_webhooks_path(project: Any, lambda_context: Any) -> None:
    # Given a client whose record-link variable holds a phone (a recording link then takes the path that keeps the
    # phone index right), and webhooks of every kind: a new call, its recording later (a duplicate that brings the
    # link), an outgoing call (attempt linking), a ZEON call live (RINGING, ACCEPTED), its history, an event after it,
    # and a body that cannot be read (kept, then a 400)
    client = Client(id="tel", channel="telephony", phone=PHONE, variables={RECORD_LINK_VARIABLE: "79010000001"})
    ClientStore(get_storage()).add(project.project, client)
    new_call = {"calltype": "in", "client": PHONE, "id": "1709290800.1", "disposition": "ANSWERED", "talktime": "65"}
    recording = {**new_call, "record_link": "https://pbx.test/rec/1709290800.1.mp3"}
    outgoing = {"calltype": "out", "client": "+7 900 444-33-22", "id": "1709290900.2", "disposition": "NO ANSWER"}
    event = {"cmd": "event", "callid": "1709291000.3", "call-type": "IN", "phone": PHONE, "exten": "346"}
    ringing, accepted = ({**event, "call-status": state} for state in ("RINGING", "ACCEPTED"))
    history = {**event, "cmd": "history", "call-status": "ANSWERED", "duration": "40", "pickedup": "true"}
    path_of_secret = {"secret": PBX_SECRET}
    broken = api_event(
        "POST",
        "/iptelefon_webhook/{secret}",
        f"/iptelefon_webhook/{PBX_SECRET}",
        body="{broken",
        path_params=path_of_secret,
    )

    # When the real handler takes them, watched
    with watching_the_path() as path:
        answers = [
            lambda_handler(webhook_event(PBX_SECRET, f), lambda_context)
            for f in (new_call, recording, outgoing, ringing, accepted, history, ringing)
        ]
        refused = lambda_handler(broken, lambda_context)

    # Then each got its answer, the path reached DynamoDB through the repositories, and no module on it was entered
    # again from below
    assert [answer["statusCode"] for answer in answers] == [200] * 7
    assert [answer_json(answer).get("duplicate") for answer in answers] == [False, True, False, None, None, False, None]
    assert [answer_json(answer).get("live") for answer in answers[3:]] == ["ringing", "answered", None, "ended"]
    assert refused["statusCode"] == 400
    assert ("iptelefon.data.call_records", "iptelefon.data.gateway") in path.steps
    assert ("iptelefon.usecases.webhook", "iptelefon.data.live_calls") in path.steps
    assert sorted(path.reentries) == []
    # and each repository is entered from the use case only: none steps into another on the way to the gateway
    assert path.repositories_entered_from_below() == []
    # and storage stores what the use case hands it: it neither reads the PBX's request nor words the notification
    assert path.storage_steps_into("webhook_body", "call_aliases", "notifications") == []
