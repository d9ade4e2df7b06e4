"""XML rendering is pure: documents for every phase validate against UWS-v1.1.xsd."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from opus_min.uws.model import ErrorType, Job, JobError, Parameter, Phase, Result, format_instant
from opus_min.uws.xml import render_job, render_jobs, render_parameters, render_results

T0 = datetime(2026, 11, 25, 12, 0, 0, 123456, tzinfo=UTC)
URL = "https://host/rest/echo/1abc"


def job(phase: Phase, **changes) -> Job:
    base = dict(
        id="1abc", service="echo", owner="", phase=phase, creation_time=T0, execution_duration=60
    )
    base.update(changes)
    return Job(**base)


@pytest.mark.parametrize("phase", list(Phase))
def test_every_phase_validates(phase, assert_valid):
    doc = assert_valid(render_job(job(phase), URL))
    assert doc.get("version") == "1.1"


def test_full_document(assert_valid):
    full = job(
        Phase.ERROR,
        owner="alice",
        run_id="r<1>",
        quote=T0,
        start_time=T0,
        end_time=T0 + timedelta(seconds=1),
        destruction=T0 + timedelta(days=7),
        error=JobError("bad & worse", ErrorType.TRANSIENT, "detail"),
        parameters=(
            Parameter("text", "x < y"),
            Parameter("data", "f.bin", by_reference=True, file="data.bin"),
        ),
        results=(Result("out put", "out.txt", "text/plain", 12, "0" * 64),),
    )
    body = render_job(full, URL)
    doc = assert_valid(body)
    ns = {"uws": "http://www.ivoa.net/xml/UWS/v1.0", "xlink": "http://www.w3.org/1999/xlink"}
    assert doc.findtext("uws:runId", namespaces=ns) == "r<1>"
    assert doc.findtext("uws:ownerId", namespaces=ns) == "alice"
    assert doc.findtext("uws:creationTime", namespaces=ns) == "2026-11-25T12:00:00.123Z"
    summary = doc.find("uws:errorSummary", ns)
    assert summary.get("type") == "transient" and summary.get("hasDetail") == "true"
    result = doc.find("uws:results/uws:result", ns)
    assert result.get("{http://www.w3.org/1999/xlink}href") == URL + "/results/out%20put"
    params = doc.findall("uws:parameters/uws:parameter", ns)
    assert params[1].get("byReference") == "true" and params[1].text == URL + "/parameters/data"
    assert b"+00:00" not in body


def test_lists_and_fragments_validate(assert_valid):
    jobs = [job(Phase.PENDING), job(Phase.COMPLETED, id="2def", run_id="x", owner="bob")]
    doc = assert_valid(render_jobs(jobs, "https://host/rest/echo"))
    assert [ref.get("id") for ref in doc] == ["1abc", "2def"]
    assert_valid(render_jobs([], "https://host/rest/echo"))
    assert_valid(render_results(job(Phase.PENDING), URL))
    assert_valid(render_parameters(job(Phase.PENDING, parameters=(Parameter("a", "\x07"),)), URL))


def test_instants_are_utc_with_z():
    from datetime import timezone

    local = datetime(2026, 1, 1, 1, 30, tzinfo=timezone(timedelta(hours=2)))
    assert format_instant(local) == "2025-12-31T23:30:00.000Z"


AWKWARD = [
    "plain",
    "",
    'say "hi"',
    "a < b && c > d",
    "line one\nline two\ttabbed\r",
    "café ✓ 😀",
    "]]>",
    "'single'",
]


@pytest.mark.parametrize("value", AWKWARD)
def test_parameter_values_and_names_read_back_exactly(value, assert_valid):
    """Values that need no escaping are written as they are; every other one still reads back
    as sent (an XML parser normalises attribute whitespace, so names with it are escaped)."""
    params = (Parameter("p", value), Parameter(value or "n", "v"))
    for body in (
        render_job(job(Phase.PENDING, parameters=params), URL),
        render_parameters(job(Phase.PENDING, parameters=params), URL),
    ):
        doc = assert_valid(body)
        found = doc.iter("{http://www.ivoa.net/xml/UWS/v1.0}parameter")
        assert [(p.get("id"), p.text or "") for p in found] == [("p", value), (value or "n", "v")]


def test_values_xml_cannot_carry_go_by_reference(assert_valid):
    doc = assert_valid(render_job(job(Phase.PENDING, parameters=(Parameter("p", "a\x00b"),)), URL))
    param = doc.find("{http://www.ivoa.net/xml/UWS/v1.0}parameters")[0]
    assert param.get("byReference") == "true" and param.text == URL + "/parameters/p"


def test_instants_of_year_one_keep_four_digits():
    assert format_instant(datetime(1, 1, 1, tzinfo=UTC)) == "0001-01-01T00:00:00.000Z"
