"""`make run`'s PBX dialect (issue 19): PBX_DIALECT (what the Makefile passes) or --pbx-dialect, zeon by default."""

from __future__ import annotations

import pytest

from devstack.run import parse_args


@pytest.mark.parametrize(("variable", "dialect"), [(None, "zeon"), ("", "zeon"), ("classic", "classic")])
def test_pbx_dialect_comes_from_the_variable_else_zeon(
    variable: str | None, dialect: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if variable is None:
        monkeypatch.delenv("PBX_DIALECT", raising=False)
    else:
        monkeypatch.setenv("PBX_DIALECT", variable)
    assert parse_args([]).pbx_dialect == dialect


def test_the_option_wins_over_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PBX_DIALECT", "classic")
    assert parse_args(["--pbx-dialect", "zeon"]).pbx_dialect == "zeon"


def test_an_unknown_dialect_is_refused_before_anything_starts(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PBX_DIALECT", "asterisk")
    with pytest.raises(SystemExit):
        parse_args([])
    assert "PBX_DIALECT must be one of zeon, classic, not 'asterisk'" in capsys.readouterr().err
