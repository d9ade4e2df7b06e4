"""ProvSAP request parameters: parsing and checking, DALI-style. Pure.

Names are case-insensitive; values of DIRECTION, MODEL, RESPONSEFORMAT and the booleans too
(``back`` = ``BACK``). A repeated single-valued parameter, an unknown parameter or a bad value
is a 400; an unknown RESPONSEFORMAT a 415.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ..uws.errors import UsageError, UWSError
from .build import MODELS
from .formats import FORMATS, Format

__all__ = ["MAX_IDS", "ProvQuery", "UnsupportedFormat", "parse_query"]

MAX_IDS = 100
"""IDs one request may name."""
_MAX_DEPTH = 1_000_000
_BOOLEANS = {"TRUE": True, "1": True, "YES": True, "FALSE": False, "0": False, "NO": False}
_SINGLE = ("depth", "direction", "agent", "model", "responseformat", "members", "steps")


class UnsupportedFormat(UWSError):
    """RESPONSEFORMAT names a format this server does not write."""

    code = 415
    label = "UnsupportedMediaType"


@dataclass(frozen=True)
class ProvQuery:
    ids: tuple[str, ...]
    depth: int | None
    """Relations to follow from each ID (Used and WasGeneratedBy each count 1); None = ALL."""
    direction: str = "BACK"
    agent: bool = False
    model: str = "IVOA"
    format: Format = FORMATS["PROV-JSON"]


def _format(raw: str) -> Format:
    value = raw.strip()
    for fmt in FORMATS.values():
        if value.upper() in (fmt.name, "PROV-" + fmt.name) or value.lower() == fmt.media_type:
            return fmt
    known = ", ".join(FORMATS)
    raise UnsupportedFormat(f"RESPONSEFORMAT {value[:40]!r} is not supported; use one of {known}")


def _boolean(name: str, raw: str) -> bool:
    try:
        return _BOOLEANS[raw.strip().upper()]
    except KeyError:
        raise UsageError(f"{name} must be TRUE or FALSE, not {raw[:40]!r}") from None


def parse_query(args: Sequence[tuple[str, str]]) -> ProvQuery:
    """Check the request's (name, value) pairs.

    Raises
    ------
    UsageError
        Raised for a missing ID, an unknown or repeated parameter, or a bad value (400).
    UnsupportedFormat
        Raised for an unknown RESPONSEFORMAT (415).
    """
    ids: list[str] = []
    single: dict[str, str] = {}
    for name, value in args:
        key = name.lower()
        if key == "id":
            if value.strip():
                ids.append(value.strip())
            continue
        if key not in _SINGLE:
            raise UsageError(f"parameter {name[:40]!r} is not supported by ProvSAP here")
        if key in single:
            raise UsageError(f"{name.upper()} given more than once")
        single[key] = value
    if not ids:
        raise UsageError("ID is required: a job id (or job URL) or a file id data:sha256-<hex>")
    if len(ids) > MAX_IDS:
        raise UsageError(f"more than {MAX_IDS} IDs")
    depth: int | None = None
    raw_depth = single.get("depth", "ALL").strip()
    if raw_depth.upper() != "ALL":
        if not raw_depth.isdigit() or len(raw_depth) > 7:
            raise UsageError(f"DEPTH must be ALL or an integer >= 0, not {raw_depth[:40]!r}")
        depth = min(int(raw_depth), _MAX_DEPTH)
    direction = single.get("direction", "BACK").strip().upper()
    if direction not in ("BACK", "FORTH"):
        raise UsageError(f"DIRECTION must be BACK or FORTH, not {direction[:40]!r}")
    model = single.get("model", "IVOA").strip().upper()
    if model not in MODELS:
        raise UsageError(f"MODEL must be IVOA or W3C, not {model[:40]!r}")
    for flag in ("members", "steps"):  # no collections or activity flows here: accepted no-ops
        if flag in single:
            _boolean(flag.upper(), single[flag])
    return ProvQuery(
        ids=tuple(dict.fromkeys(ids)),
        depth=depth,
        direction=direction,
        agent=_boolean("AGENT", single["agent"]) if "agent" in single else False,
        model=model,
        format=_format(single["responseformat"])
        if "responseformat" in single
        else FORMATS["PROV-JSON"],
    )
