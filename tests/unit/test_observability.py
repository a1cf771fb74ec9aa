"""Log hygiene: the service logger masks phones and blanks secrets in every JSON line it writes to stdout."""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from iptelefon.data.client_items import phone_pk
from iptelefon.platform.observability import logger, mask_text, redact

PHONE = "79004443322"
MASKED = "7900*****22"
NATIONAL_DIGITS = "9004443322"  # what is left of PHONE without the country code: must not be readable either

LogLines = Callable[[], list[dict[str, Any]]]


class _CurrentStdout:
    """A stream that writes to whatever `sys.stdout` is at write time (capsys swaps it for every test phase)."""

    def write(self, text: str) -> int:
        return sys.stdout.write(text)

    def flush(self) -> None:
        sys.stdout.flush()


@pytest.fixture
def log_lines(capsys: pytest.CaptureFixture[str]) -> Iterator[LogLines]:
    """The JSON lines the service logger wrote to stdout, parsed, read through `capsys`.

    The Powertools handler keeps the `sys.stdout` it saw when the module was imported (pytest's global capture), so
    for the test it writes through `_CurrentStdout` to the stdout capsys installs; the old stream is put back after.
    """
    handler = logger.registered_handler
    assert isinstance(handler, logging.StreamHandler)
    previous = handler.setStream(_CurrentStdout())

    def read() -> list[dict[str, Any]]:
        out = capsys.readouterr().out
        return [json.loads(line) for line in out.splitlines() if line.strip()]

    yield read
    handler.setStream(previous)


def _one_line(read: LogLines) -> tuple[dict[str, Any], str]:
    """The single line logged, parsed and as raw text (non-ASCII kept, so nothing hides behind `\\u` escapes)."""
    (line,) = read()
    return line, json.dumps(line, ensure_ascii=False)


def _readable_digits(text: str) -> str:
    return re.sub(r"\D", "", text)


# --- phones in log lines ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("phone", "masked"),
    [
        ("+7 900 444-33-22", MASKED),
        ("79004443322", MASKED),
        ("+79004443322", MASKED),
        ("8 (900) 444-33-22", "8900*****22"),
        ("+375 29 123-45-67", "3752******67"),
    ],
)
def test_phone_in_the_message_is_masked(log_lines: LogLines, phone: str, masked: str) -> None:
    # Given a message that mentions a phone
    # When it is logged
    logger.info(f"calling {phone} now")

    # Then the line shows the masked phone, never the full one
    line, raw = _one_line(log_lines)
    assert line["message"] == f"calling {masked} now"
    assert phone not in raw
    assert _readable_digits(phone) not in raw


@pytest.mark.parametrize("phone", ["+7 900 444-33-22", "79004443322"])
def test_phone_in_extra_is_masked(log_lines: LogLines, phone: str) -> None:
    # Given an `extra` field holding a phone
    # When it is logged
    logger.info("call started", extra={"client_phone": phone, "call_id": "1709290800.1843"})

    # Then the field is masked and the full phone appears nowhere in the line
    line, raw = _one_line(log_lines)
    assert line["client_phone"] == MASKED
    assert line["call_id"] == "1709290800.1843"
    assert PHONE not in raw
    assert phone not in raw


def test_phone_nested_in_extra_is_masked(log_lines: LogLines) -> None:
    # Given phones inside nested dicts and lists of `extra`
    # When they are logged
    logger.info("matched", extra={"match": {"clients": [{"phone": PHONE}, {"variables": ["+7 900 444-33-22"]}]}})

    # Then every one of them is masked
    line, raw = _one_line(log_lines)
    assert line["match"] == {"clients": [{"phone": MASKED}, {"variables": [MASKED]}]}
    assert PHONE not in raw


def test_phone_in_the_exception_text_is_masked(log_lines: LogLines) -> None:
    # Given an exception whose text carries a phone
    # When it is logged with its traceback
    try:
        raise ValueError(f"no client for {PHONE}")
    except ValueError:
        logger.exception("matching failed")

    # Then the formatted traceback shows it masked
    line, _ = _one_line(log_lines)
    assert f"no client for {MASKED}" in line["exception"]
    assert PHONE not in line["exception"]


def test_phone_in_an_exception_appears_nowhere_in_the_line(log_lines: LogLines) -> None:
    # Given an exception whose text carries a phone
    # When it is logged with its traceback
    try:
        raise ValueError(f"no client for {PHONE}")
    except ValueError:
        logger.exception("matching failed")

    # Then no field of the line (stack_trace included) shows the full phone
    _, raw = _one_line(log_lines)
    assert PHONE not in raw


def test_phone_given_as_an_int_is_masked(log_lines: LogLines) -> None:
    # Given a phone held as an int (JSON bodies and PBX payloads carry them that way)
    # When it is logged in `extra`
    logger.info("call started", extra={"client_phone": 79004443322})

    # Then the full phone does not appear
    _, raw = _one_line(log_lines)
    assert PHONE not in raw


@pytest.mark.parametrize(
    ("message", "extra"),
    [
        ("employee 346 called", {"short_employee_phone": "346"}),
        ("amount 1500 charged", {"amount": "1500"}),
        ("group 3 rang for 42 s", {"group_id": "3", "talk_seconds": 42}),
        ("order 123456789 paid", {"order": "123456789"}),  # 9 digits: below a phone's 10
        ("due 2024-01-15 at 12:30", {"due": "2024-01-15"}),
    ],
    ids=["extension", "amount", "small-ints", "nine-digits", "date"],
)
def test_number_shorter_than_a_phone_is_kept(log_lines: LogLines, message: str, extra: dict[str, Any]) -> None:
    # Given a message and fields with numbers that are not phones
    # When they are logged
    logger.info(message, extra=extra)

    # Then they are written unchanged
    line, _ = _one_line(log_lines)
    assert line["message"] == message
    assert {key: line[key] for key in extra} == extra


def test_the_log_timestamp_is_not_masked(log_lines: LogLines) -> None:
    # Given any log line
    # When it is written
    logger.info("hello")

    # Then its own timestamp is intact (Powertools writes `YYYY-MM-DD HH:MM:SS,mmm+0000`)
    line, _ = _one_line(log_lines)
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2},\d{3}[+-]\d{4}", line["timestamp"])


# --- secrets in log lines --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "key",
    ["secret", "webhook_secret", "token", "bot_token", "Authorization", "password", "pbx_password", "hash", "api_key"],
)
def test_value_under_a_secret_like_key_is_blanked(log_lines: LogLines, key: str) -> None:
    # Given an `extra` field whose key says it holds a secret
    # When it is logged
    logger.info("request", extra={key: "hunter2-value"})

    # Then its value is `***`
    line, raw = _one_line(log_lines)
    assert line[key] == "***"
    assert "hunter2-value" not in raw


def test_secret_nested_in_dicts_and_lists_is_blanked(log_lines: LogLines) -> None:
    # Given secrets deep inside dicts and lists of `extra`
    request = {
        "headers": {"Authorization": "Bearer abc.def", "Content-Type": "application/json"},
        "items": [{"token": "tok-1"}, {"note": "ok"}],
        "deep": [[{"Password": "p4ss"}], {"project": {"webhook_secret": "whs-1", "name": "Acme"}}],
        "form": {"topic": "base", "hash": "5a40714f35de2dbedd6f16f0bd42dd88"},
    }

    # When it is logged
    logger.info("request", extra={"request": request})

    # Then every secret value is `***` and everything else is kept
    line, raw = _one_line(log_lines)
    assert line["request"] == {
        "headers": {"Authorization": "***", "Content-Type": "application/json"},
        "items": [{"token": "***"}, {"note": "ok"}],
        "deep": [[{"Password": "***"}], {"project": {"webhook_secret": "***", "name": "Acme"}}],
        "form": {"topic": "base", "hash": "***"},
    }
    for secret in ("Bearer abc.def", "tok-1", "p4ss", "whs-1", "5a40714f35de2dbedd6f16f0bd42dd88"):
        assert secret not in raw


def test_whole_structure_under_a_secret_key_is_blanked(log_lines: LogLines) -> None:
    # Given a dict and a list stored under secret-like keys
    # When they are logged
    logger.info("config", extra={"secrets": {"pbx": "s3cr3t"}, "tokens": ["t1", "t2"]})

    # Then each is replaced as a whole
    line, raw = _one_line(log_lines)
    assert line["secrets"] == "***"
    assert line["tokens"] == "***"
    assert "s3cr3t" not in raw


# --- mask_text and redact --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("79004443322", MASKED),
        ("+79004443322", MASKED),
        ("+7 900 444-33-22", MASKED),
        ("+7 (900) 444 33 22", MASKED),
        ("8 (900) 444-33-22", "8900*****22"),
        ("+7\u00a0900\u00a0444\u00a033\u00a022", MASKED),
        ("tel:+79004443322", f"tel:{MASKED}"),
        ("phone=79004443322&ext=346", f"phone={MASKED}&ext=346"),
        (phone_pk("p1", "79004443322"), phone_pk("p1", MASKED)),
        ("+79004443322;", f"{MASKED};"),
        ("no client for 79004443322", f"no client for {MASKED}"),
        ("phones 79004443322, 79005556677", f"phones {MASKED}, 7900*****77"),
        ("+375 29 123-45-67", "3752******67"),
        ("4915123456789", "4915*******89"),
        ("ext 346", "ext 346"),
        ("amount 1500", "amount 1500"),
        ("order 123456789", "order 123456789"),
        ("2024-01-15", "2024-01-15"),
        ("2024-01-15 12:34:56,789+0000", "2024-01-15 12:34:56,789+0000"),
        ("call 1709290800.1843", "call 1709290800.1843"),  # a PBX call id
        ("no digits here", "no digits here"),
        ("", ""),
        ("a79004443322", "a7900*****22"),  # glued to a word: 11+ digits are masked all the same (ids carry phones)
        ("79004443322b", "7900*****22b"),
    ],
)
def test_mask_text(text: str, expected: str) -> None:
    # Given a piece of text
    # When it is masked
    # Then phones keep their first four and last two digits, everything else is untouched
    assert mask_text(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "calling 79004443322.",
        "8 900 444 33 22",
        "8-900-444-33-22",
        "7 900 444 33 22",
        "(900) 444-33-22",
        "7.900.444.33.22",
    ],
)
def test_mask_text_hides_every_form_normalize_phone_accepts(text: str) -> None:
    # Given a phone in a form `normalize_phone` accepts (so a caller or the PBX may send it, and it may be logged)
    # When it is masked
    masked = mask_text(text)

    # Then its digits cannot be read back
    assert NATIONAL_DIGITS not in _readable_digits(masked)


@pytest.mark.parametrize("value", [1500, 3.5, None, True, "ok"])
def test_redact_keeps_plain_values(value: object) -> None:
    # Given a value that is neither a secret nor a phone
    # When it is redacted under an ordinary key
    # Then it comes back unchanged
    assert redact(value, "amount") == value


def test_redact_turns_tuples_into_lists_and_masks_inside() -> None:
    # Given a tuple holding a phone
    # When it is redacted
    # Then it is a list (JSON has no tuples) with the phone masked
    assert redact(("346", PHONE)) == ["346", MASKED]


def test_redact_matches_secret_keys_case_insensitively() -> None:
    # Given secret-like keys in any case
    given = {"Api_Key": "k", "BOT_TOKEN": "t", "X-Auth-Token": "x", "name": "n"}

    # When a dict with them is redacted
    result = redact(given)

    # Then their values are blanked and the rest is kept
    assert result == {"Api_Key": "***", "BOT_TOKEN": "***", "X-Auth-Token": "***", "name": "n"}


def test_a_phone_glued_into_an_id_is_masked() -> None:
    # Given a PBX call id that carries the phone (`in_<phone>_<time>`), When masked, Then the phone is not readable
    assert mask_text("in_79004443322_1709290800") == "in_7900*****22_1709290800"
