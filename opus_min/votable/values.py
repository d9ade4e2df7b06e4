"""Check one submitted job-parameter value against its InputParam (pure, no I/O).

The controller calls :func:`check_value` for every parameter of a job before the value reaches
the job script, so a value that is the wrong type, out of range or not among the allowed OPTIONs
is refused with a short message naming the parameter (OPUS accepted ``n=abc``).
"""

from __future__ import annotations

import re

from .model import InputParam

__all__ = ["INT_RANGES", "check_value", "is_array"]

INT_RANGES: dict[str, tuple[int, int]] = {
    "unsignedByte": (0, 255),
    "short": (-(2**15), 2**15 - 1),
    "int": (-(2**31), 2**31 - 1),
    "long": (-(2**63), 2**63 - 1),
}
"""Inclusive ranges of the VOTable integer datatypes."""

_FLOAT_MAX = {"float": 3.4028234663852886e38, "double": 1.7976931348623157e308}
"""Largest finite value of each floating-point datatype (IEEE single and double)."""

_CHAR_TYPES = frozenset({"char", "unicodeChar"})

# Strict forms: [0-9] is ASCII only (unlike \d or int()), and neither allows "_" or "3.0".
_INT_RE = re.compile(r"[+-]?[0-9]+")
_FLOAT_RE = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_SPECIAL_FLOAT_RE = re.compile(r"[+-]?(?:nan|inf|infinity)", re.IGNORECASE)
_ARRAYSIZE_RE = re.compile(r"([0-9]+)(\*?)|\*")

_TRUE = frozenset({"true", "t", "1", "yes"})
_FALSE = frozenset({"false", "f", "0", "no"})

Number = int | float


def is_array(param: InputParam) -> bool:
    """True when the parameter takes several whitespace-separated items.

    Character types are strings whatever their arraysize; other types are arrays when an
    arraysize other than ``1`` is given.
    """
    if param.datatype in _CHAR_TYPES:
        return False
    return param.arraysize not in (None, "", "1")


def check_value(param: InputParam, raw: str) -> str:
    """Return ``raw`` normalised for ``param``, or raise ValueError with a user-facing message.

    The message starts with the parameter name, e.g. ``"n: 'abc' is not an int"``.
    """
    name = param.name
    if "\x00" in raw:
        raise ValueError(f"{name}: the value contains a NUL character")
    datatype = param.datatype
    if datatype in _CHAR_TYPES:
        limit = _char_limit(param.arraysize)
        if limit is not None and len(raw) > limit:
            raise ValueError(f"{name}: longer than {limit} characters")
        if param.options and raw not in param.options:
            raise ValueError(f"{name}: {_show(raw)} is not one of {', '.join(param.options)}")
        return raw
    if datatype != "boolean" and datatype not in INT_RANGES and datatype not in _FLOAT_MAX:
        raise ValueError(f"{name}: unsupported datatype {datatype!r}")

    if is_array(param):
        items = raw.split()
        _check_count(param, len(items))
        checked = [_check_scalar(param, item) for item in items]
        value = " ".join(text for text, _ in checked)
        keys = tuple(key for _, key in checked)
    else:
        text, key = _check_scalar(param, raw.strip())
        value, keys = text, (key,)

    if param.options and not any(_option_keys(param, opt) == keys for opt in param.options):
        raise ValueError(f"{name}: {_show(value)} is not one of {', '.join(param.options)}")
    return value


def _check_scalar(param: InputParam, text: str) -> tuple[str, str | Number]:
    """Check one (stripped) item; return its normalised text and a key to compare OPTIONs."""
    name, datatype = param.name, param.datatype
    if datatype == "boolean":
        folded = text.casefold()
        if folded in _TRUE:
            return "true", "true"
        if folded in _FALSE:
            return "false", "false"
        raise ValueError(f"{name}: {_show(text)} is not a boolean")

    number: Number
    if datatype in INT_RANGES:
        if not _INT_RE.fullmatch(text):
            raise ValueError(f"{name}: {_show(text)} is not {_article(datatype)} {datatype}")
        number = int(text)
        low, high = INT_RANGES[datatype]
        if not low <= number <= high:
            raise ValueError(f"{name}: {text} is out of range for {_article(datatype)} {datatype}")
        text = str(number)
    else:
        if _SPECIAL_FLOAT_RE.fullmatch(text):
            # NaN/inf cannot be compared with bounds, so they are only allowed without them.
            if param.minimum is not None or param.maximum is not None:
                raise ValueError(f"{name}: {_show(text)} is not a finite number")
            return text, float(text)
        if not _FLOAT_RE.fullmatch(text):
            raise ValueError(f"{name}: {_show(text)} is not {_article(datatype)} {datatype}")
        number = float(text)
        if abs(number) > _FLOAT_MAX[datatype]:
            raise ValueError(f"{name}: {text} is out of range for {_article(datatype)} {datatype}")

    _check_bounds(param, text, number)
    return text, number


def _check_bounds(param: InputParam, text: str, number: Number) -> None:
    """Compare one numeric item with MIN and MAX (bounds that do not parse are ignored here:
    the service loader reports them)."""
    name = param.name
    low = _bound(param.minimum)
    if low is not None:
        if param.minimum_inclusive and number < low:
            raise ValueError(f"{name}: {text} is below the minimum {param.minimum}")
        if not param.minimum_inclusive and number <= low:
            raise ValueError(f"{name}: {text} is not above the exclusive minimum {param.minimum}")
    high = _bound(param.maximum)
    if high is not None:
        if param.maximum_inclusive and number > high:
            raise ValueError(f"{name}: {text} is above the maximum {param.maximum}")
        if not param.maximum_inclusive and number >= high:
            raise ValueError(f"{name}: {text} is not below the exclusive maximum {param.maximum}")


def _check_count(param: InputParam, count: int) -> None:
    """Check the number of array items against arraysize (``n`` exact, ``n*`` at most n)."""
    match = _ARRAYSIZE_RE.fullmatch(param.arraysize or "*")
    if match is None or match.group(1) is None:
        return  # "*" (or a malformed arraysize the loader already refused): no limit
    size = int(match.group(1))
    if match.group(2):
        if count > size:
            raise ValueError(f"{param.name}: expected at most {size} values, got {count}")
    elif count != size:
        raise ValueError(f"{param.name}: expected {size} values, got {count}")


def _option_keys(param: InputParam, option: str) -> tuple[str | Number | None, ...]:
    """Comparison keys of an OPTION value: booleans normalised, numbers as numbers."""
    items = option.split() if is_array(param) else [option.strip()]
    keys: list[str | Number | None] = []
    for item in items:
        if param.datatype == "boolean":
            folded = item.casefold()
            keys.append("true" if folded in _TRUE else "false" if folded in _FALSE else None)
        else:
            keys.append(_bound(item))
    return tuple(keys)


def _bound(text: str | None) -> Number | None:
    """Parse a MIN/MAX/OPTION number leniently; None when absent or not a number."""
    if text is None:
        return None
    text = text.strip()
    if _INT_RE.fullmatch(text):
        return int(text)
    if _FLOAT_RE.fullmatch(text) or _SPECIAL_FLOAT_RE.fullmatch(text):
        return float(text)
    return None


def _char_limit(arraysize: str | None) -> int | None:
    """Maximum length of a character value: ``n`` or ``n*`` → n; ``*`` or absent → None."""
    match = _ARRAYSIZE_RE.fullmatch(arraysize or "*")
    if match is None or match.group(1) is None:
        return None
    return int(match.group(1))


def _article(word: str) -> str:
    return "an" if word[0] in "aeiouAEIOU" else "a"


def _show(text: str) -> str:
    """Quote a user-supplied value for a message, cut short so messages stay short."""
    if len(text) > 40:
        text = text[:37] + "..."
    return repr(text)
