"""Parsing of the UWS control values (WAIT, LAST, AFTER, PHASE, DESTRUCTION, ...). Pure.

Each parser raises :class:`UsageError` with a message that names the control and the value.
"""

from __future__ import annotations

import re
from datetime import datetime

from .errors import UsageError
from .model import Phase, parse_instant

__all__ = [
    "CONTROL_NAMES",
    "parse_action",
    "parse_destruction",
    "parse_duration",
    "parse_int",
    "parse_phase_filter",
    "parse_phase_request",
    "parse_run_id",
]

CONTROL_NAMES = frozenset(
    {"phase", "runid", "action", "executionduration", "destruction", "wait", "last", "after"}
)
"""UWS control parameter names, lower-cased: never job parameters."""

_INT = re.compile(r"^[+-]?[0-9]{1,12}$")


def parse_int(name: str, raw: str) -> int:
    if not _INT.match(raw.strip()):
        raise UsageError(f"{name} must be an integer, not {raw[:80]!r}")
    return int(raw)


def parse_phase_filter(values: list[str]) -> tuple[Phase, ...]:
    phases = []
    for raw in values:
        try:
            phases.append(Phase(raw.strip().upper()))
        except ValueError:
            raise UsageError(f"PHASE: {raw[:80]!r} is not a UWS phase") from None
    return tuple(dict.fromkeys(phases))


def parse_last(raw: str) -> int:
    value = parse_int("LAST", raw)
    if value < 1:
        raise UsageError(f"LAST must be a positive integer, not {raw[:80]!r}")
    return value


def parse_after(raw: str) -> datetime:
    try:
        return parse_instant(raw)
    except (ValueError, OverflowError):
        raise UsageError(f"AFTER must be an ISO 8601 instant, not {raw[:80]!r}") from None


def parse_phase_request(raw: str) -> Phase:
    """The value of a ``PHASE=`` POST: RUN or ABORT."""
    value = raw.strip().upper()
    if value == "RUN":
        return Phase.QUEUED
    if value == "ABORT":
        return Phase.ABORTED
    raise UsageError(f"PHASE must be RUN or ABORT, not {raw[:80]!r}")


def parse_action(raw: str) -> str:
    if raw.strip().upper() != "DELETE":
        raise UsageError(f"ACTION must be DELETE, not {raw[:80]!r}")
    return "DELETE"


def parse_duration(raw: str) -> int:
    value = parse_int("EXECUTIONDURATION", raw)
    if value < 0:
        raise UsageError(f"EXECUTIONDURATION must be 0 or more seconds, not {raw[:80]!r}")
    return value


def parse_destruction(raw: str) -> datetime:
    try:
        return parse_instant(raw)
    except (ValueError, OverflowError):
        raise UsageError(f"DESTRUCTION must be an ISO 8601 instant, not {raw[:80]!r}") from None


def parse_run_id(raw: str) -> str:
    if len(raw) > 256:
        raise UsageError("RUNID is longer than 256 characters")
    if "\x00" in raw:
        raise UsageError("RUNID contains a NUL character")
    return raw
