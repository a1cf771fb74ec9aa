"""The README's layout table names every module of every room of the layer (a new module needs its line)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LAYER = ROOT / "layers" / "common" / "iptelefon"
ROW = re.compile(r"^\| `layers/common/iptelefon/(\w+)/` \| (.+) \|$", re.MULTILINE)


def rooms_in_readme() -> dict[str, set[str]]:
    """Room -> the module names the README's row of that room puts first in backticks (`name` or `name` (...))."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    return {room: set(re.findall(r"`(\w+)`", text)) for room, text in ROW.findall(readme)}


def rooms_on_disk() -> dict[str, set[str]]:
    return {
        room.name: {module.stem for module in room.glob("*.py") if module.stem != "__init__"}
        for room in LAYER.iterdir()
        if (room / "__init__.py").exists()
    }


def test_every_room_of_the_layer_has_a_row() -> None:
    assert sorted(rooms_in_readme()) == sorted(rooms_on_disk())


def test_every_module_is_named_in_its_rooms_row() -> None:
    readme = rooms_in_readme()
    missing = {room: sorted(modules - readme.get(room, set())) for room, modules in rooms_on_disk().items()}
    assert {room: names for room, names in missing.items() if names} == {}


def test_the_layer_has_no_module_outside_a_room() -> None:
    assert sorted(module.name for module in LAYER.glob("*.py")) == ["__init__.py"]
