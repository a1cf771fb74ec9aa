"""What the API answers, as allow-list models: an answer holds the fields named here and nothing else (never a
database item minus a deny-list)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel


# -- calls (the call-starting routes) ----------------------------------------------------------------------------------
class CallStarted(BaseModel):
    """202 of POST /v1/calls/employee and /v1/calls/group: the attempt the PBX took."""

    attempt_id: str  # look it up with GET /v1/calls/{attempt_id}
    status: Literal["initiated"] = "initiated"
    client_phone: str
    client_phone_e164: str
    pbx_call_id: str | None = None  # the PBX's own id of the call, when its reply had one

    def body(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_none=True)


class CardCallStarted(CallStarted):
    """202 of POST /v1/clients/{client_id}/call for an employee whose call method is `api`."""

    method: Literal["api"] = "api"


class AppCall(BaseModel):
    """200 of POST /v1/clients/{client_id}/call for an employee whose call method is `app`: the softphone dials."""

    method: Literal["app"] = "app"
    uri: str  # tel:+<phone>

    def body(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


# The order of a call answer's fields: the idempotency store keeps JSON with sorted keys, and a repeat must be byte for
# byte the first answer.
CALL_ANSWER_ORDER = ("method", "uri", *CallStarted.model_fields)
