"""Tokens: random, shown once, stored only as sha256; a request names its project and its role by its token.

A bot token calls and reads; an operator token is one employee (the console's client card); an admin token manages the
project's settings and employees. A route says which roles it takes (`Caller.require`): another role is a 403.
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass

from iptelefon.domain.errors import Forbidden, Unauthorized
from iptelefon.domain.hashes import sha256_hex
from iptelefon.domain.models import Project, Role, TokenRecord, utc_now
from iptelefon.usecases.ports import Projects, Tokens

TOKEN_PREFIX = "iptb_"  # noqa: S105 - a public marker, not a secret
_UNAUTHORIZED = "missing or invalid bearer token"


@dataclass(frozen=True)
class Caller:
    """Who a valid token is."""

    project: Project
    role: Role
    token_id: str
    employee_id: str | None = None  # an operator's employee

    def require(self, *roles: Role) -> Project:
        """The caller's project, if its role may use this route; else 403."""
        if self.role not in roles:
            raise Forbidden(f"a {self.role} token cannot use this route (it takes: {', '.join(roles)})")
        return self.project


@dataclass(frozen=True)
class AuthDeps:
    """What `authenticate` reads: the token, then its project."""

    tokens: Tokens
    projects: Projects


def issue_token(
    tokens: Tokens, project_id: str, *, role: Role = "bot", employee_id: str | None = None
) -> tuple[str, str]:
    """Create a token for the project; return (token_id, token). The token is not stored anywhere in clear."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)  # 32 random bytes
    token_id = uuid.uuid4().hex[:12]
    record = TokenRecord(
        token_id=token_id, project_id=project_id, created_at=utc_now(), role=role, employee_id=employee_id
    )
    tokens.put_token(sha256_hex(token), record)
    return token_id, token


def authenticate(deps: AuthDeps, authorization: str | None) -> Caller:
    """Who a valid `Authorization: Bearer <token>` header is, else Unauthorized (same answer every time)."""
    scheme, _, token = (authorization or "").strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token.startswith(TOKEN_PREFIX) or len(token) > 200:
        raise Unauthorized(_UNAUTHORIZED)
    # The lookup key is the token's sha256: response timing tells nothing about the token's characters.
    record = deps.tokens.find_token(sha256_hex(token))
    if record is None or record.revoked:
        raise Unauthorized(_UNAUTHORIZED)
    project = deps.projects.get_project(record.project_id)
    if project is None:
        raise Unauthorized(_UNAUTHORIZED)
    return Caller(project, record.role, record.token_id, record.employee_id)
