"""In-memory fakes of what the admin and auth use cases receive (`usecases.ports`, "admin and auth")."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from iptelefon.domain.errors import Conflict, NotFound
from iptelefon.domain.hashes import sha256_hex
from iptelefon.domain.models import Employee, PbxCredentials, Project, TokenRecord
from iptelefon.usecases.admin import AdminDeps
from iptelefon.usecases.auth import AuthDeps


@dataclass
class FakeProjects:
    projects: dict[str, Project] = field(default_factory=dict)
    lookups: dict[str, dict[str, Any]] = field(default_factory=dict)  # secret sha256 -> lookup item

    def get_project(self, project_id: str) -> Project | None:
        return self.projects.get(project_id)

    def get_project_cached(self, project_id: str) -> Project | None:
        return self.projects.get(project_id)

    def find_webhook_secret(self, secret_sha256: str) -> dict[str, Any] | None:
        return self.lookups.get(secret_sha256)

    def create_project(self, project: Project, webhook_secret: str) -> None:
        self.projects[project.id] = project
        self.lookups[sha256_hex(webhook_secret)] = {"project_id": project.id}

    def update_project(self, project: Project) -> None:
        self.projects[project.id] = project

    def rotate_webhook_secret(
        self,
        project_id: str,
        old_hash: str,
        new_hash: str,
        *,
        old_valid_until: int,
        new_is_token: bool = False,
        cut_earlier: bool = False,
    ) -> None:
        taken = self.lookups.get(new_hash)
        if taken is not None and taken["project_id"] != project_id:
            raise Conflict("this secret cannot be used: choose another one")
        if cut_earlier:
            for lookup in self.lookups.values():
                if lookup["project_id"] == project_id and lookup.get("valid_until", old_valid_until) > old_valid_until:
                    lookup["valid_until"] = old_valid_until
        self.lookups[new_hash] = {"project_id": project_id}
        if new_is_token:
            self.projects[project_id] = self.projects[project_id].model_copy(update={"webhook_token_sha256": new_hash})
        if old_hash != new_hash:
            self.lookups[old_hash] = {**self.lookups[old_hash], "valid_until": old_valid_until}


@dataclass
class FakeEmployees:
    employees: dict[tuple[str, str], Employee] = field(default_factory=dict)

    def get_employee(self, project_id: str, employee_id: str) -> Employee | None:
        return self.employees.get((project_id, employee_id))

    def put_employee(self, project_id: str, employee: Employee) -> None:
        self.employees[(project_id, employee.id)] = employee

    def list_employees(self, project_id: str) -> list[Employee]:
        return [e for (p, _), e in self.employees.items() if p == project_id]

    def delete_employee(self, project_id: str, employee_id: str) -> None:
        self.employees.pop((project_id, employee_id), None)


@dataclass
class FakeTokens:
    records: dict[str, TokenRecord] = field(default_factory=dict)  # token sha256 -> record

    def put_token(self, token_hash: str, record: TokenRecord) -> None:
        self.records[token_hash] = record

    def find_token(self, token_hash: str) -> TokenRecord | None:
        return self.records.get(token_hash)

    def list_tokens(self, project_id: str) -> list[dict[str, Any]]:
        return [
            {
                "sk": f"TOKENREF#{r.token_id}",
                "token_hash": h,
                "role": r.role,
                "employee_id": r.employee_id,
                "created_at": r.created_at.isoformat(),
                "revoked": r.revoked,
            }
            for h, r in self.records.items()
            if r.project_id == project_id
        ]

    def revoke_token(self, project_id: str, token_id: str) -> bool:
        for token_hash, record in self.records.items():
            if record.project_id == project_id and record.token_id == token_id:
                self.records[token_hash] = record.model_copy(update={"revoked": True})
                return True
        return False


@dataclass
class FakePbxSettings:
    stored: dict[str, PbxCredentials] = field(default_factory=dict)
    reads: int = 0  # how many times a use case read SSM

    def read(self, project_id: str) -> PbxCredentials:
        self.reads += 1
        if project_id not in self.stored:
            raise NotFound(f"project {project_id} has no PBX connection")
        return self.stored[project_id]

    def write(self, project_id: str, credentials: PbxCredentials) -> None:
        self.stored[project_id] = credentials


@dataclass
class FakeClock:
    now: float = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


def admin_deps(clock: FakeClock | None = None) -> AdminDeps:
    return AdminDeps(FakeProjects(), FakeEmployees(), FakeTokens(), FakePbxSettings(), clock or FakeClock())


def auth_deps(admin: AdminDeps) -> AuthDeps:
    """Authentication over the same fakes as `admin`."""
    return AuthDeps(tokens=admin.tokens, projects=admin.projects)
