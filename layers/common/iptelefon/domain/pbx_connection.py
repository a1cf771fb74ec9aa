"""How to talk to one project's PBX (`PbxConnection`): what the call use case hands the PBX adapter
(`adapters.pbx`), built from the project (DynamoDB) and its credentials (SSM); and what the adapter read in a reply
(`PbxReply`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from iptelefon.domain.models import DEFAULT_PBX_CALL_NAMES, AuthMode

# Connecting may be retried once: cap each attempt so that two attempts plus the read stay within the Lambda timeout.
MAX_CONNECT_TIMEOUT_SECONDS = 2.0


@dataclass(frozen=True)
class PbxConnection:
    """How to talk to one project's PBX, built from the project config (SSM + DynamoDB). Its repr hides the secret."""

    server_url: str
    secret: str = field(repr=False)
    auth_mode: AuthMode = "hash"
    employee_method: str = DEFAULT_PBX_CALL_NAMES.employee_method
    group_method: str = DEFAULT_PBX_CALL_NAMES.group_method
    param_names: Mapping[str, str] = field(
        default_factory=lambda: MappingProxyType({str(k): v for k, v in DEFAULT_PBX_CALL_NAMES.param_names.items()})
    )
    timeout_seconds: float = 10.0

    def param_name(self, logical: str) -> str:
        """The PBX's real name of a logical parameter (`ext`, `phone`, `group`); unmapped names stay as they are."""
        return self.param_names.get(logical) or logical


@dataclass(frozen=True)
class PbxReply:
    """A PBX reply as the adapter read it (`adapters.pbx`), whatever its shape.

    `data`: the classic reply's `data` (or its `text`), the `code` reply's other fields, a bare list, a `text` answer.
    `confirmed`: the reply said success itself (`result` 1 or `code` "success"), not just answered something.
    `pbx_call_id`: the PBX's id of the call a call-starting method started, when the reply named one.
    """

    data: Any
    confirmed: bool = True
    pbx_call_id: str | None = None
