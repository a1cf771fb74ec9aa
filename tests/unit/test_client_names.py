"""The display-name rule (`domain.client_names`): the first entry of the project's order that has a value names the
client; the name search looks in the same variables."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from iptelefon.domain.client_names import DEFAULT_NAME_VARIABLES, display_name, name_values
from iptelefon.domain.models import Project
from iptelefon.domain.requests import SettingsUpdate


@pytest.mark.parametrize(
    ("variables", "name"),
    [
        ({"name": "Ivan Petrov", "ФИО": "Иванов Иван"}, "Ivan Petrov"),  # the order's first entry wins
        ({"ФИО": "Иванов Иван Иванович", "Город": "Тула"}, "Иванов Иван Иванович"),
        ({"Имя": "Ольга"}, "Ольга"),
        ({"фио": "Звонарёв Пётр"}, "Звонарёв Пётр"),  # case aside, as people type CSV headers
        ({"first_name": "Anna", "last_name": "Smirnova"}, "Anna Smirnova"),
        ({"last_name": "Smirnova"}, "Smirnova"),  # half of a joined entry still names
        ({"name": "  ", "Имя": "Ольга"}, "Ольга"),  # a blank value is no name
        ({"Город": "Тула", "phone": "79001112233"}, None),  # no name: the console shows the phone
    ],
)
def test_the_default_order_names_a_client(variables: dict[str, str], name: str | None) -> None:
    assert display_name(variables, DEFAULT_NAME_VARIABLES) == name


def test_a_projects_order_decides() -> None:
    variables = {"name": "bot-lead-17", "ФИО": "Иванов Иван"}
    assert display_name(variables, ["ФИО", "name"]) == "Иванов Иван"
    assert display_name(variables, ["company"]) is None


def test_the_search_looks_in_every_variable_the_order_names_and_no_other() -> None:
    variables = {"first_name": "Anna", "last_name": "Smirnova", "Город": "Тула", "company_name": "ООО Ромашка"}
    assert name_values(variables, DEFAULT_NAME_VARIABLES) == ["Anna", "Smirnova"]


def test_a_new_project_uses_the_default_order() -> None:
    assert Project(id="p1", name="P").name_variables == list(DEFAULT_NAME_VARIABLES)


@pytest.mark.parametrize("order", [[], ["a+"], ["+a"], ["a++b"], ["x"] * 11, ["a+b+c+d+e"], [" name"]])
def test_a_bad_order_is_refused(order: list[str]) -> None:
    with pytest.raises(ValidationError) as refused:
        SettingsUpdate(name_variables=order)
    assert refused.value.errors()[0]["loc"][0] == "name_variables"
