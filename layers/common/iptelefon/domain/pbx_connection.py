"""How to talk to one project's PBX (`PbxConnection`): what the call use case hands the PBX adapter
(`adapters.pbx`), built from the project (DynamoDB) and its credentials (SSM)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from iptelefon.domain.models import AuthMode

# Logical parameter names of the call-starting methods; a project maps them to its PBX's real names.
LOGICAL_PARAMS = ("ext", "phone", "group")
# Connecting may be retried once: cap each attempt so that two attempts plus the read stay within the Lambda timeout.
MAX_CONNECT_TIMEOUT_SECONDS = 2.0


@dataclass(frozen=True)
class PbxConnection:
    """How to talk to one project's PBX, built from the project config (SSM + DynamoDB). Its repr hides the secret."""

    server_url: str
    secret: str = field(repr=False)
    auth_mode: AuthMode = "hash"
    employee_method: str = "call-employee"
    group_method: str = "call-group"
    param_names: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({n: n for n in LOGICAL_PARAMS}))
    timeout_seconds: float = 10.0

    def param_name(self, logical: str) -> str:
        """The PBX's real name of a logical parameter (`ext`, `phone`, `group`); unmapped names stay as they are."""
        return self.param_names.get(logical) or logical
