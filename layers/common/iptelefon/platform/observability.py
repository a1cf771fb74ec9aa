"""The only Logger and Metrics of the service.

Logs are JSON (Powertools). Before a record is written, anything that looks like a phone number is masked and values
under secret-like keys are replaced, so a careless `logger.info(..., extra=...)` cannot leak a token or a phone.
Tracer is left out on purpose: it loads the X-Ray SDK (~300 ms of cold start) even with tracing disabled.
"""

from __future__ import annotations

import re
import warnings
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.logging.formatter import LambdaPowertoolsFormatter

# A phone number in free text, as people and PBXs write it: 10-15 digits in a row (+79004443322), or grouped with
# spaces, dots, dashes and brackets (+7 (900) 444-33-22, 8 900 444 33 22, (900) 444-33-22, +375 29 123-45-67).
# Not inside a word, an id like 1709290800.1843 or an ARN (…:123456789012:…); dates and times stay readable.
_SEP = r"[\s.\-]?"
_PHONE_IN_TEXT = re.compile(
    r"(?<![\w.])(?:"
    r"\+?\d{10,15}"
    rf"|\+?\d{{1,3}}{_SEP}\(?\d{{3}}\)?{_SEP}\d{{3}}{_SEP}\d{{2}}{_SEP}\d{{2}}"
    rf"|\(\d{{3}}\){_SEP}\d{{3}}{_SEP}\d{{2}}{_SEP}\d{{2}}"
    r"|\+\d[\d\s()\-]{8,}\d"
    r")(?![\w:])(?!\.\d)"
)
_SECRET_KEYS = ("secret", "token", "authorization", "password", "hash", "api_key", "api-key", "apikey")


# A phone glued into an id (`in_79004443322_1709290800`): any 11-15 digits in a row, unless part of an ARN (:…:).
_LONG_DIGIT_RUN = re.compile(r"(?<![\d:])\d{11,15}(?![\d:])")


_DIGIT = re.compile(r"\d")
# What Powertools itself writes on every record (level, time, the Lambda context): never a phone or a secret, so the
# formatter does not scan it. Our message and extra keys are always scanned.
_POWERTOOLS_KEYS = frozenset(
    {
        "level",
        "location",
        "timestamp",
        "service",
        "cold_start",
        "function_name",
        "function_memory_size",
        "function_arn",
        "function_request_id",
        "xray_trace_id",
        "sampling_rate",
    }
)


def mask_text(text: str) -> str:
    if not _DIGIT.search(text):  # every phone pattern needs digits: most log text has none
        return text
    return _LONG_DIGIT_RUN.sub(_mask_match, _PHONE_IN_TEXT.sub(_mask_match, text))


def _mask_match(match: re.Match[str]) -> str:
    digits = re.sub(r"\D", "", match.group(0))
    return digits[:4] + "*" * max(len(digits) - 6, 0) + digits[-2:]


def redact(value: Any, key: str = "") -> Any:
    if key and any(marker in key.lower() for marker in _SECRET_KEYS):
        return "***"
    if isinstance(value, str):
        return mask_text(value)
    if isinstance(value, dict):
        return {k: redact(v, str(k)) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact(v) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, float):
        return value
    if isinstance(value, int):  # a phone held as a number
        return mask_text(str(value)) if len(str(abs(value))) >= 10 else value
    return mask_text(str(value))  # exceptions and other objects are logged by their text


class RedactingFormatter(LambdaPowertoolsFormatter):
    def serialize(self, log: dict[str, Any]) -> str:  # type: ignore[override]
        return super().serialize({k: v if k in _POWERTOOLS_KEYS else redact(v, k) for k, v in log.items()})


# A request that records no metric is normal here (a 4xx, a read): not worth a warning on every invocation.
warnings.filterwarnings("ignore", message="No application metrics to publish", category=UserWarning)

logger = Logger(logger_formatter=RedactingFormatter())
metrics = Metrics()
