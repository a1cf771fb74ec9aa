"""A client's display name, from the variables a bot or an import gave it: the one rule of the read answers
(`display_name`), the console and the name search.

A project's `name_variables` is an ordered list of entries; the first entry with a value names the client. An entry
is a variable (`ФИО`) or variables joined by `+` (`first_name+last_name`: their non-empty values, space-separated).
Variable names match case aside (`фио` is `ФИО`), as people type them in CSV headers and bot settings.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

DEFAULT_NAME_VARIABLES = ("name", "ФИО", "Имя", "first_name+last_name")
MAX_NAME_VARIABLES = 10
NAME_VARIABLE_ENTRY = r"^[^+\s][^+]{0,99}(\+[^+\s][^+]{0,99}){0,3}$"  # up to 4 names of 1-100 characters


def display_name(variables: Mapping[str, str], name_variables: Sequence[str]) -> str | None:
    """The client's name by the project's order, or None when no entry has a value (the console shows the phone)."""
    for entry in name_variables:
        name = " ".join(value for value in (_value(variables, part) for part in entry.split("+")) if value)
        if name:
            return name
    return None


def name_values(variables: Mapping[str, str], name_variables: Sequence[str]) -> list[str]:
    """Every value a name search looks in: each variable the order names (`last_name` alone finds a client too)."""
    found = (_value(variables, part) for entry in name_variables for part in entry.split("+"))
    return [value for value in found if value]


def _value(variables: Mapping[str, str], name: str) -> str:
    if name in variables:
        return variables[name].strip()
    wanted = name.casefold()
    return next((value.strip() for key, value in variables.items() if key.casefold() == wanted), "")
