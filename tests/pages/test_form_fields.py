"""The form fields generated from InputParams and Used entities (pure)."""

from __future__ import annotations

from opus_min.pages import _field_of_error, form_fields
from opus_min.votable.model import InputParam, ServiceDescription, UsedEntity


def service(*params: InputParam, used: tuple[UsedEntity, ...] = ()) -> ServiceDescription:
    return ServiceDescription(name="svc", script="true", parameters=params, used=used)


def fields_by_name(svc: ServiceDescription):
    params, files = form_fields(svc)
    return {f.name: f for f in params + files}


def test_numbers_take_their_bounds_and_steps():
    f = fields_by_name(
        service(
            InputParam("k", "int", minimum="0", minimum_inclusive=False, maximum="10"),
            InputParam("x", "double", minimum="0", minimum_inclusive=False, maximum="1.5"),
            InputParam("b", "unsignedByte"),
            InputParam("s", "short", maximum="7", maximum_inclusive=False),
        )
    )
    assert (f["k"].kind, f["k"].minimum, f["k"].maximum, f["k"].step) == ("number", "1", "10", "1")
    # An exclusive real bound cannot be said in HTML: the server checks it alone.
    assert (f["x"].minimum, f["x"].maximum, f["x"].step) == (None, "1.5", "any")
    assert "> 0" in f["x"].hint and "≤ 1.5" in f["x"].hint
    assert (f["b"].minimum, f["b"].maximum) == ("0", "255")  # the datatype's own range
    assert (f["s"].minimum, f["s"].maximum) == ("-32768", "6")


def test_options_booleans_arrays_and_strings():
    f = fields_by_name(
        service(
            InputParam("mode", "char", arraysize="*", options=("a", "b"), default="a"),
            InputParam("flag", "boolean", default="true", required=False),
            InputParam("vec", "double", arraysize="3", unit="deg"),
            InputParam("code", "char", arraysize="8*"),
        )
    )
    assert (f["mode"].kind, f["mode"].options, f["mode"].default) == ("select", ("a", "b"), "a")
    assert (f["flag"].kind, f["flag"].options, f["flag"].required) == (
        "select",
        ("true", "false"),
        False,
    )
    assert f["vec"].kind == "text" and "separated by spaces" in f["vec"].hint
    assert f["vec"].unit == "deg"
    assert (f["code"].kind, f["code"].maxlength) == ("text", 8)


def test_used_entities_get_a_file_picker_and_a_reference_field():
    svc = service(
        used=(
            UsedEntity("obs", multiplicity="1", url="https://archive.example/get?id=$ID"),
            UsedEntity("extra", multiplicity="0..1", url="file://$ID", content_type="text/plain"),
        )
    )
    f = fields_by_name(svc)
    assert f["obs"].kind == "file" and f["obs"].required
    assert f["obs"].reference == "or an ID, fetched from https://archive.example/get?id=$ID"
    assert not f["extra"].required and "URL" in f["extra"].reference
    assert "text/plain" in f["extra"].hint


def test_server_messages_are_matched_to_their_field():
    svc = service(InputParam("Depth", "int"), used=(UsedEntity("events"),))
    assert _field_of_error("Depth: 'x' is not an int", svc) == "Depth"
    assert _field_of_error("depth: 5 is above the maximum 3", svc) == "Depth"
    assert _field_of_error("events: required input file missing", svc) == "events"
    assert _field_of_error("RUNID is longer than 256 characters", svc) == "RUNID"
    assert _field_of_error("EXECUTIONDURATION must be an integer", svc) == "EXECUTIONDURATION"
    assert _field_of_error("more than 200 parameters", svc) is None
