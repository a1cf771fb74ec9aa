"""Bot tokens: random, shown once, stored only as sha256; a request names its project by its token."""

from __future__ import annotations

import secrets
import uuid

from iptelefon.errors import Unauthorized
from iptelefon.models import Project, TokenRecord, utc_now
from iptelefon.storage import Storage, sha256_hex

TOKEN_PREFIX = "iptb_"  # noqa: S105 - a public marker, not a secret
_UNAUTHORIZED = "missing or invalid bearer token"


def issue_token(storage: Storage, project_id: str) -> tuple[str, str]:
    """Create a token for the project; return (token_id, token). The token is not stored anywhere in clear."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)  # 32 random bytes
    token_id = uuid.uuid4().hex[:12]
    storage.put_token(sha256_hex(token), TokenRecord(token_id=token_id, project_id=project_id, created_at=utc_now()))
    return token_id, token


def authenticate(storage: Storage, authorization: str | None) -> Project:
    """The project of a valid `Authorization: Bearer <token>` header, else Unauthorized (same answer every time)."""
    scheme, _, token = (authorization or "").strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token.startswith(TOKEN_PREFIX) or len(token) > 200:
        raise Unauthorized(_UNAUTHORIZED)
    # The lookup key is the token's sha256: response timing tells nothing about the token's characters.
    record = storage.find_token(sha256_hex(token))
    if record is None or record.revoked:
        raise Unauthorized(_UNAUTHORIZED)
    project = storage.get_project(record.project_id)
    if project is None:
        raise Unauthorized(_UNAUTHORIZED)
    return project
