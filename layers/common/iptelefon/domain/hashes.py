"""How secrets are kept: only their sha256 is stored and looked up (tokens, webhook secrets)."""

from __future__ import annotations

import hashlib


def sha256_hex(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()
