"""API tokens, stored only as their sha256, over the storage gateway.

Keys (MainTable):
    TOKEN#<sha256(token)> / TOKEN             the token's record (`domain.models.TokenRecord`): how a request finds it
    PROJECT#<project_id> / TOKENREF#<token_id> the project's listing of it: hash, role, employee, created_at, revoked
"""

from __future__ import annotations

from typing import Any

from iptelefon.data.gateway import Storage, project_pk, put, update
from iptelefon.domain.models import TokenRecord


def token_pk(token_hash: str) -> str:
    return f"TOKEN#{token_hash}"


class TokenStore:
    def __init__(self, storage: Storage) -> None:
        self.storage = storage

    def put_token(self, token_hash: str, record: TokenRecord) -> None:
        item = {"pk": token_pk(token_hash), "sk": "TOKEN", "type": "token", **record.model_dump(mode="json")}
        listing = {
            "pk": project_pk(record.project_id),
            "sk": f"TOKENREF#{record.token_id}",
            "token_hash": token_hash,
            "created_at": record.created_at.isoformat(),
            "role": record.role,
            "employee_id": record.employee_id,
        }
        self.storage.transact([put(item, only_if="attribute_not_exists(pk)", label="token exists"), put(listing)])

    def find_token(self, token_hash: str) -> TokenRecord | None:
        item = self.storage.get(token_pk(token_hash), "TOKEN")
        return TokenRecord.model_validate(item) if item else None

    def list_tokens(self, project_id: str) -> list[dict[str, Any]]:
        return self.storage.query(project_pk(project_id), "TOKENREF#")

    def revoke_token(self, project_id: str, token_id: str) -> bool:
        """Both items marked revoked (the token answers 401 from now on); False when the project has no such token."""
        ref = self.storage.get(project_pk(project_id), f"TOKENREF#{token_id}")
        if not ref:
            return False
        revoked = "SET revoked = :yes"
        self.storage.transact(
            [
                update(token_pk(str(ref["token_hash"])), "TOKEN", revoked, values={":yes": True}),
                update(project_pk(project_id), f"TOKENREF#{token_id}", revoked, values={":yes": True}),
            ]
        )
        return True
