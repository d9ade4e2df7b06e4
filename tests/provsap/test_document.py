"""PROV-JSON written directly from the recorded document is what the ``prov`` library writes
for the same records, and reads back into the same document."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta

import prov
import pytest

from opus_min.provsap import FORMATS, build_records, serialize
from opus_min.provsap.records import (
    ActivityRecord,
    EntityRecord,
    GeneratedRecord,
    ProvGraph,
    UsedRecord,
)
from opus_min.votable.loader import load_services
from tests.conftest import SERVICES

T0 = datetime(2026, 11, 25, 12, 0, 0, 250000, tzinfo=UTC)
SHA = [f"{i:064x}" for i in range(6)]


def _graph() -> ProvGraph:
    """Two jobs: a deleted counts_map (with two event lists in one role, a huge result and an
    error) whose result a significance_map used by URL; one entity invalidated."""
    a = ActivityRecord(
        "1aaa",
        "counts_map",
        "ann",
        "ERROR",
        T0,
        T0 + timedelta(seconds=1),
        T0 + timedelta(seconds=2),
        run_id='run "é" <1>',
        error="it failed\nbadly",
        parameters=(("binsz", "0.05"), ("note", "a=b & c")),
        deleted=T0 + timedelta(hours=1),
    )
    b = ActivityRecord("2bbb", "significance_map", "", "COMPLETED", T0 + timedelta(minutes=1))
    t = T0 + timedelta(seconds=3)
    return ProvGraph(
        activities={"1aaa": a, "2bbb": b},
        entities={
            SHA[0]: EntityRecord(SHA[0], 10, "application/fits", "ev1.fits", T0),
            SHA[1]: EntityRecord(SHA[1], 11, "application/fits", "ev2.fits", T0),
            SHA[2]: EntityRecord(SHA[2], 2**40, "application/fits", "map.fits", t, t),
            SHA[3]: EntityRecord(SHA[3], 0, "text/plain", "stdout.log", t),
        },
        used=[
            UsedRecord("1aaa", "events", SHA[0], 10, "application/fits", "ev1.fits", None, T0),
            UsedRecord("1aaa", "events", SHA[1], 11, "application/fits", "ev2.fits", None, T0),
            UsedRecord(
                "2bbb",
                "counts_map",
                SHA[2],
                2**40,
                "application/fits",
                "map.fits",
                "http://elsewhere/map.fits",
                t,
            ),
        ],
        generated=[
            GeneratedRecord("1aaa", "counts_map", SHA[2], 2**40, "application/fits", "m", t, t),
            GeneratedRecord("1aaa", "stdout", SHA[3], 0, "text/plain", "stdout.log", t),
        ],
    )


@pytest.mark.parametrize("model", ["IVOA", "W3C"])
def test_direct_prov_json_is_what_the_library_writes(model):
    services, problems = load_services(SERVICES)
    assert not problems
    records = build_records(_graph(), services, "https://host/base", model=model)
    ours = serialize(records, FORMATS["PROV-JSON"])
    library = records.to_prov().serialize(format="json")
    assert json.loads(ours) == json.loads(library)
    back = prov.read(io.StringIO(ours.decode()), format="json")
    assert back == records.to_prov()
    kinds = {type(r).__name__ for r in back.get_records()}
    assert {"ProvInvalidation", "ProvCommunication", "ProvUsage", "ProvGeneration"} <= kinds


def test_values_the_writer_does_not_know_are_refused():
    records = build_records(ProvGraph(), {}, "https://host")
    records.entity(records.namespaces[0]["x"], {records.namespaces[0]["v"]: 1.5})
    with pytest.raises(TypeError, match="float"):
        records.to_json()
