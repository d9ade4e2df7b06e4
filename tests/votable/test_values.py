"""Tests for opus_min.votable.values: one submitted value checked against its InputParam."""

from __future__ import annotations

import pytest

from opus_min.votable import InputParam, check_value, is_array


def p(datatype: str, **kwargs) -> InputParam:
    return InputParam(name=kwargs.pop("name", "n"), datatype=datatype, **kwargs)


def rejects(param: InputParam, raw: str) -> str:
    with pytest.raises(ValueError) as info:
        check_value(param, raw)
    return str(info.value)


# --- booleans ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("true", "true"), ("T", "true"), ("1", "true"), ("Yes", "true"), (" FALSE ", "false"),
     ("f", "false"), ("0", "false"), ("no", "false")],
)  # fmt: skip
def test_boolean_spellings(raw: str, expected: str) -> None:
    assert check_value(p("boolean"), raw) == expected


def test_boolean_rejects_other_text() -> None:
    assert rejects(p("boolean", name="flag"), "maybe") == "flag: 'maybe' is not a boolean"
    assert rejects(p("boolean", name="flag"), "") == "flag: '' is not a boolean"


# --- integers ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"), [("42", "42"), ("+5", "5"), ("007", "7"), (" -3 ", "-3"), ("-0", "0")]
)
def test_int_normalised(raw: str, expected: str) -> None:
    assert check_value(p("int"), raw) == expected


@pytest.mark.parametrize("raw", ["abc", "3.0", "1_000", "1e3", "0x10", "٣", "", "1 2"])
def test_int_strict_syntax(raw: str) -> None:
    # int() would accept "1_000", " 3" and Arabic-Indic digits; the job script must not see them.
    assert rejects(p("int"), raw) == f"n: {raw.strip()!r} is not an int"


@pytest.mark.parametrize(
    ("datatype", "low", "high"),
    [("unsignedByte", 0, 255), ("short", -32768, 32767), ("int", -(2**31), 2**31 - 1),
     ("long", -(2**63), 2**63 - 1)],
)  # fmt: skip
def test_integer_ranges(datatype: str, low: int, high: int) -> None:
    param = p(datatype)
    assert check_value(param, str(low)) == str(low)
    assert check_value(param, str(high)) == str(high)
    article = "an" if datatype[0] in "aeiou" else "a"
    assert (
        rejects(param, str(high + 1)) == f"n: {high + 1} is out of range for {article} {datatype}"
    )
    assert rejects(param, str(low - 1)) == f"n: {low - 1} is out of range for {article} {datatype}"


def test_unsigned_byte_message_uses_an() -> None:
    assert rejects(p("unsignedByte"), "x") == "n: 'x' is not an unsignedByte"
    assert rejects(p("short"), "x") == "n: 'x' is not a short"


# --- floating point ---------------------------------------------------------------------------


@pytest.mark.parametrize("raw", ["1", "1.5", "-.5", "2.", "1e3", "+6.02E23", " 3.25 "])
def test_float_keeps_stripped_text(raw: str) -> None:
    assert check_value(p("double"), raw) == raw.strip()


@pytest.mark.parametrize("raw", ["1_0", "abc", "1.2.3", "e5", "--1", "", "0x1p3"])
def test_float_strict_syntax(raw: str) -> None:
    assert rejects(p("double", name="x"), raw) == f"x: {raw!r} is not a double"


def test_nan_and_inf_only_without_bounds() -> None:
    assert check_value(p("double"), "nan") == "nan"
    assert check_value(p("float"), "-Inf") == "-Inf"
    bounded = p("double", name="x", minimum="0")
    assert rejects(bounded, "nan") == "x: 'nan' is not a finite number"
    assert rejects(p("double", name="x", maximum="1"), "inf") == "x: 'inf' is not a finite number"


def test_float_overflow() -> None:
    assert check_value(p("double"), "1e39") == "1e39"
    assert rejects(p("float", name="x"), "1e39") == "x: 1e39 is out of range for a float"
    assert rejects(p("double", name="x"), "1e400") == "x: 1e400 is out of range for a double"


# --- bounds and options -----------------------------------------------------------------------


def test_inclusive_bounds() -> None:
    param = p("int", minimum="1", maximum="5")
    assert check_value(param, "1") == "1"
    assert check_value(param, "5") == "5"
    assert rejects(param, "7") == "n: 7 is above the maximum 5"
    assert rejects(param, "0") == "n: 0 is below the minimum 1"


def test_exclusive_bounds() -> None:
    param = p("double", name="x", minimum="0", minimum_inclusive=False, maximum="1",
              maximum_inclusive=False)  # fmt: skip
    assert check_value(param, "0.5") == "0.5"
    assert rejects(param, "0") == "x: 0 is not above the exclusive minimum 0"
    assert rejects(param, "1.0") == "x: 1.0 is not below the exclusive maximum 1"


def test_char_options_exact() -> None:
    param = p("char", name="mode", arraysize="*", options=("a", "b"))
    assert check_value(param, "a") == "a"
    assert rejects(param, "x") == "mode: 'x' is not one of a, b"
    assert rejects(param, "A") == "mode: 'A' is not one of a, b"
    assert rejects(param, " a") == "mode: ' a' is not one of a, b"


def test_numeric_options_compare_numerically() -> None:
    ints = p("int", options=("1", "2", "3"))
    assert check_value(ints, "+02") == "2"
    assert rejects(ints, "4") == "n: '4' is not one of 1, 2, 3"
    doubles = p("double", name="x", options=("0.5", "1"))
    assert check_value(doubles, "1.0") == "1.0"
    assert check_value(doubles, "5e-1") == "5e-1"
    assert rejects(doubles, "nan") == "x: 'nan' is not one of 0.5, 1"


def test_boolean_options_compare_normalised() -> None:
    param = p("boolean", name="flag", options=("true",))
    assert check_value(param, "yes") == "true"
    assert rejects(param, "0") == "flag: 'false' is not one of true"


# --- characters -------------------------------------------------------------------------------


def test_char_keeps_text_and_limits_length() -> None:
    assert check_value(p("char", arraysize="*"), "  $(rm -rf /) `x` ") == "  $(rm -rf /) `x` "
    assert check_value(p("char"), "x" * 10_000) == "x" * 10_000
    assert check_value(p("unicodeChar", arraysize="3"), "äöü") == "äöü"
    assert rejects(p("char", name="s", arraysize="3"), "abcd") == "s: longer than 3 characters"
    assert rejects(p("char", name="s", arraysize="3*"), "abcd") == "s: longer than 3 characters"


def test_nul_rejected_everywhere() -> None:
    assert rejects(p("char", name="s"), "a\x00b") == "s: the value contains a NUL character"
    assert rejects(p("int"), "1\x00") == "n: the value contains a NUL character"


# --- arrays -----------------------------------------------------------------------------------


def test_is_array() -> None:
    assert is_array(p("int", arraysize="3"))
    assert is_array(p("double", arraysize="*"))
    assert is_array(p("boolean", arraysize="2*"))
    assert not is_array(p("int"))
    assert not is_array(p("int", arraysize="1"))
    assert not is_array(p("char", arraysize="*"))
    assert not is_array(p("unicodeChar", arraysize="10"))


def test_fixed_size_array() -> None:
    param = p("double", name="pos", arraysize="2", minimum="-90", maximum="360")
    assert check_value(param, " 10.5 \t -20\n") == "10.5 -20"
    assert rejects(param, "1 2 3") == "pos: expected 2 values, got 3"
    assert rejects(param, "1") == "pos: expected 2 values, got 1"
    assert rejects(param, "1 400") == "pos: 400 is above the maximum 360"
    assert rejects(param, "1 x") == "pos: 'x' is not a double"


def test_variable_size_arrays() -> None:
    assert check_value(p("int", arraysize="3*"), "+1 02") == "1 2"
    assert rejects(p("int", arraysize="3*"), "1 2 3 4") == "n: expected at most 3 values, got 4"
    assert check_value(p("int", arraysize="*"), " ".join(["7"] * 50)) == " ".join(["7"] * 50)
    assert check_value(p("int", arraysize="*"), "") == ""
    assert check_value(p("boolean", arraysize="*"), "yes 0 T") == "true false true"


def test_array_options_compare_whole_value() -> None:
    param = p("int", arraysize="2", options=("1 2", "3 4"))
    assert check_value(param, "01 2") == "1 2"
    assert rejects(param, "2 1") == "n: '2 1' is not one of 1 2, 3 4"


def test_unsupported_datatype() -> None:
    assert rejects(p("floatComplex"), "1 2") == "n: unsupported datatype 'floatComplex'"


def test_long_values_are_cut_in_messages() -> None:
    message = rejects(p("int"), "9" * 30 + "x" * 30)
    assert message == f"n: {'9' * 30 + 'x' * 7 + '...'!r} is not an int"
