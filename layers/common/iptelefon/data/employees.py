"""A project's employees and their call methods, over the storage gateway.

Keys (MainTable):
    PROJECT#<project_id> / EMPLOYEE#<employee_id>   the employee (`domain.models.Employee`)
"""

from __future__ import annotations

from iptelefon.data.gateway import Storage, delete, project_pk, put
from iptelefon.domain.models import Employee


def employee_sk(employee_id: str) -> str:
    return f"EMPLOYEE#{employee_id}"


class EmployeeStore:
    def __init__(self, storage: Storage) -> None:
        self.storage = storage

    def put_employee(self, project_id: str, employee: Employee) -> None:
        item = {
            "pk": project_pk(project_id),
            "sk": employee_sk(employee.id),
            "type": "employee",
            **employee.model_dump(mode="json"),
        }
        self.storage.write(put(item))

    def get_employee(self, project_id: str, employee_id: str) -> Employee | None:
        item = self.storage.get(project_pk(project_id), employee_sk(employee_id))
        return Employee.model_validate(item) if item else None

    def list_employees(self, project_id: str) -> list[Employee]:
        return [Employee.model_validate(i) for i in self.storage.query(project_pk(project_id), "EMPLOYEE#")]

    def delete_employee(self, project_id: str, employee_id: str) -> None:
        self.storage.write(delete(project_pk(project_id), employee_sk(employee_id)))
