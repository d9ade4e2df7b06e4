"""The UWS 1.1 REST binding over real HTTP (waitress on 127.0.0.1, requests as the client)."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
from lxml import etree

from tests.conftest import create, phase_of, wait_final

UWS = "{http://www.ivoa.net/xml/UWS/v1.0}"
XSI_NIL = "{http://www.w3.org/2001/XMLSchema-instance}nil"


def job_doc(http, url, assert_valid, **params):
    r = http.get(url, params=params, timeout=30)
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"].startswith("application/xml")
    return assert_valid(r.content)


def test_create_returns_303_to_an_absolute_job_url(live, http, assert_valid):
    r = http.post(live.jobs("echo"), data={"text": "hi"}, allow_redirects=False)
    assert r.status_code == 303
    location = r.headers["Location"]
    assert location.startswith(live.url + "/rest/echo/")
    job_id = location.rsplit("/", 1)[1]
    assert job_id[0].isdigit() and job_id.isalnum() and len(job_id) >= 20
    doc = job_doc(http, location, assert_valid)
    assert doc.get("version") == "1.1"
    assert doc.findtext(f"{UWS}jobId") == job_id
    assert phase_of(doc) == "PENDING"
    assert doc.find(f"{UWS}ownerId").get(XSI_NIL) == "true"
    assert doc.find(f"{UWS}startTime").get(XSI_NIL) == "true"
    assert doc.findtext(f"{UWS}creationTime").endswith("Z")
    assert doc.findtext(f"{UWS}executionDuration") == "60"  # from the description
    params = {p.get("id"): p.text for p in doc.iter(f"{UWS}parameter")}
    assert params == {"text": "hi", "n": "3", "scale": "1.0", "mode": "as-is"}
    # The quote comes from the description (1 s) while there is no history.
    quote = datetime.fromisoformat(doc.findtext(f"{UWS}quote").replace("Z", "+00:00"))
    assert abs((quote - datetime.now(UTC)).total_seconds() - 1) < 5


def test_every_id_is_unique_and_unguessable(live, http):
    ids = {create(http, live, "echo").rsplit("/", 1)[1] for _ in range(20)}
    assert len(ids) == 20
    assert all(i[0].isdigit() for i in ids)


def test_full_cycle_with_results(live, http, assert_valid):
    url = create(
        http,
        live,
        "echo",
        {"TEXT": "Bonjour", "N": "2", "MODE": "upper", "PHASE": "run", "runid": "cycle-1"},
    )
    doc = wait_final(http, url)
    assert phase_of(doc) == "COMPLETED", etree.tostring(doc)
    doc = job_doc(http, url, assert_valid)
    assert doc.findtext(f"{UWS}runId") == "cycle-1"
    results = {r.get("id"): r for r in doc.iter(f"{UWS}result")}
    assert set(results) == {"output", "summary", "stdout", "stderr"}
    href = results["output"].get("{http://www.w3.org/1999/xlink}href")
    assert href == f"{url}/results/output"
    r = http.get(href)
    assert r.status_code == 200 and r.text == "BONJOUR\nBONJOUR\n"
    assert r.headers["Content-Type"].startswith("text/plain")
    assert results["output"].get("size") == str(len(r.content))
    summary = http.get(f"{url}/results/summary").json()
    assert summary == {"lines": 2, "n": 2, "scale": 1.0}
    assert http.get(f"{url}/results/stdout").text == "wrote 2 lines\n"
    results_doc = assert_valid(http.get(f"{url}/results").content)
    assert results_doc.tag == f"{UWS}results" and len(results_doc) == 4
    start = doc.findtext(f"{UWS}startTime")
    end = doc.findtext(f"{UWS}endTime")
    assert start.endswith("Z") and end.endswith("Z") and start <= end


def test_text_resources(live, http):
    url = create(http, live, "echo")
    for resource, expected in (("phase", "PENDING"), ("executionduration", "60"), ("owner", "")):
        r = http.get(f"{url}/{resource}")
        assert r.status_code == 200 and r.text == expected
        assert r.headers["Content-Type"].startswith("text/plain")
    destruction = http.get(f"{url}/destruction").text
    assert destruction.endswith("Z")
    assert http.get(f"{url}/quote").text.endswith("Z")
    r = http.get(f"{url}/error")
    assert r.status_code == 404 and r.text.startswith("NotFound:")


def test_parameters_documents(live, http, assert_valid):
    url = create(http, live, "echo", {"text": "a\x01b", "REQUEST": "doQuery"})
    doc = assert_valid(http.get(f"{url}/parameters").content)
    assert doc.tag == f"{UWS}parameters"
    params = {p.get("id"): p for p in doc}
    # A value XML cannot carry is given by reference; its content is at the href.
    assert params["text"].get("byReference") == "true"
    assert params["text"].text == f"{url}/parameters/text"
    assert http.get(f"{url}/parameters/text").text == "a\x01b"
    assert params["REQUEST"].text == "doQuery"
    assert http.get(f"{url}/parameters/nope").status_code == 404


def test_phase_run_and_abort_transitions(live, http, assert_valid):
    url = create(http, live, "sleep", {"seconds": "30"})
    r = http.post(f"{url}/phase", data={"PHASE": "RUN"}, allow_redirects=False)
    assert r.status_code == 303 and r.headers["Location"] == url
    doc = job_doc(http, url, assert_valid, WAIT="5", PHASE="QUEUED")
    assert phase_of(doc) == "EXECUTING"
    # RUN again while running: a no-op.
    assert (
        http.post(f"{url}/phase", data={"PHASE": "RUN"}, allow_redirects=False).status_code == 303
    )
    r = http.post(f"{url}/phase", data={"phase": "abort"}, allow_redirects=False)
    assert r.status_code == 303
    assert http.get(f"{url}/phase").text == "ABORTED"
    # ABORT of a finished job is a no-op (documented); RUN of a finished job is refused.
    assert (
        http.post(f"{url}/phase", data={"PHASE": "ABORT"}, allow_redirects=False).status_code == 303
    )
    r = http.post(f"{url}/phase", data={"PHASE": "RUN"}, allow_redirects=False)
    assert r.status_code == 403 and r.text.startswith("PhaseConflict:")
    r = http.post(f"{url}/phase", data={"PHASE": "SUSPEND"}, allow_redirects=False)
    assert r.status_code == 400 and "RUN or ABORT" in r.text


def test_post_to_job_uri_accepts_phase_and_parameters(live, http):
    url = create(http, live, "echo")
    r = http.post(url, data={"n": "5", "runId": "again"}, allow_redirects=False)
    assert r.status_code == 303 and r.headers["Location"] == url
    doc = etree.fromstring(http.get(url).content)
    assert doc.findtext(f"{UWS}runId") == "again"
    assert {p.get("id"): p.text for p in doc.iter(f"{UWS}parameter")}["n"] == "5"
    r = http.post(url, data={"PHASE": "ABORT"}, allow_redirects=False)
    assert r.status_code == 303
    assert http.get(f"{url}/phase").text == "ABORTED"
    r = http.post(url, data={"n": "6"}, allow_redirects=False)
    assert r.status_code == 403


def test_parameter_update_validates_and_keeps_other_values(live, http):
    url = create(http, live, "echo", {"text": "keep", "n": "2"})
    r = http.post(f"{url}/parameters", data={"N": "abc"}, allow_redirects=False)
    assert r.status_code == 400 and "n" in r.text and "abc" in r.text
    r = http.post(f"{url}/parameters", data={"scale": "2.5"}, allow_redirects=False)
    assert r.status_code == 303
    params = {
        p.get("id"): p.text for p in etree.fromstring(http.get(url).content).iter(f"{UWS}parameter")
    }
    assert params == {"text": "keep", "n": "2", "scale": "2.5", "mode": "as-is"}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"n": "abc"}, "n: 'abc' is not"),
        ({"n": "0"}, "below the minimum"),
        ({"n": "3.0"}, "n: '3.0'"),
        ({"scale": "11"}, "above the maximum"),
        ({"scale": "None"}, "scale"),
        ({"mode": "shout"}, "not one of"),
        ({"PHASE": "EXPLODE"}, "PHASE must be RUN or ABORT"),
        ({"EXECUTIONDURATION": "1.5"}, "EXECUTIONDURATION must be an integer"),
        ({"EXECUTIONDURATION": "-4"}, "EXECUTIONDURATION must be 0 or more"),
        ({"DESTRUCTION": "tomorrow"}, "DESTRUCTION must be an ISO 8601"),
        ({"ACTION": "DELETE"}, "ACTION is not allowed"),
        ({"input": "ftp://example.org/x.txt"}, "is not an http(s) URL"),
    ],
)
def test_bad_values_are_400_and_create_nothing(live, http, data, message):
    before = http.get(live.jobs("echo")).content.count(b"<uws:jobref")
    r = http.post(live.jobs("echo"), data=data, allow_redirects=False)
    assert r.status_code == 400, r.text
    assert r.text.startswith("UsageError: ") and message in r.text
    assert r.headers["Content-Type"].startswith("text/plain")
    assert http.get(live.jobs("echo")).content.count(b"<uws:jobref") == before
    assert list((live.app.config.work_root).iterdir()) == []


def test_required_values_and_files(live, http):
    r = http.post(live.jobs("required"), data={}, allow_redirects=False)
    assert r.status_code == 400 and "target: required parameter missing" in r.text
    r = http.post(live.jobs("required"), data={"target": "x"}, allow_redirects=False)
    assert r.status_code == 400 and "data: required input file missing" in r.text
    r = http.post(
        live.jobs("required"),
        data={"target": "x" * 17},
        files={"data": ("d.bin", b"12345")},
        allow_redirects=False,
    )
    assert r.status_code == 400 and "target" in r.text
    r = http.post(
        live.jobs("required"),
        data={"target": "x"},
        files={"other": ("d.bin", b"1")},
        allow_redirects=False,
    )
    assert r.status_code == 400 and "other: not a file input" in r.text
    url = create(
        http,
        live,
        "required",
        {"target": "here", "PHASE": "RUN"},
        files={"data": ("../../evil name.bin", b"12345")},
    )
    doc = wait_final(http, url)
    assert phase_of(doc) == "COMPLETED"
    assert http.get(f"{url}/results/size").text == "5\nhere\n"
    param = {p.get("id"): p for p in doc.iter(f"{UWS}parameter")}["data"]
    assert param.get("byReference") == "true"
    r = http.get(f"{url}/parameters/data")
    assert r.content == b"12345"
    assert "evil" not in r.headers["Content-Disposition"]


def test_unknown_and_missing(live, http):
    assert http.get(live.jobs("nope")).status_code == 404
    r = http.get(live.jobs("echo") + "/0doesnotexist")
    assert r.status_code == 404 and r.text.startswith("NotFound:")
    url = create(http, live, "echo")
    assert http.get(f"{url}/results/nothing").status_code == 404
    assert http.get(f"{url}/bogus").status_code == 404
    r = http.put(url)
    assert r.status_code == 405 and "GET" in r.headers["Allow"]


def test_execution_duration_and_destruction_updates(live, http):
    url = create(http, live, "echo")
    r = http.post(
        f"{url}/executionduration", data={"EXECUTIONDURATION": "120"}, allow_redirects=False
    )
    assert r.status_code == 303 and http.get(f"{url}/executionduration").text == "120"
    # Above the configured maximum: clamped, still a 303 (UWS lets the server substitute).
    http.post(f"{url}/executionduration", data={"executionDuration": str(10**9)})
    assert http.get(f"{url}/executionduration").text == str(live.app.config.execution_duration_max)
    assert http.post(f"{url}/executionduration", data={"EXECUTIONDURATION": "x"}).status_code == 400
    when = (datetime.now(UTC) + timedelta(days=2)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    r = http.post(f"{url}/destruction", data={"DESTRUCTION": when}, allow_redirects=False)
    assert r.status_code == 303
    assert http.get(f"{url}/destruction").text == when[:23] + "Z"
    # A time in the past is moved to the near future, never destroying the job at once.
    http.post(f"{url}/destruction", data={"DESTRUCTION": "2001-01-01T00:00:00"})
    later = datetime.fromisoformat(http.get(f"{url}/destruction").text.replace("Z", "+00:00"))
    assert later > datetime.now(UTC)
    http.post(f"{url}/phase", data={"PHASE": "ABORT"})
    r = http.post(
        f"{url}/executionduration", data={"EXECUTIONDURATION": "5"}, allow_redirects=False
    )
    assert r.status_code == 403


def test_delete_and_action_delete(live, http):
    url = create(http, live, "echo")
    r = http.delete(url, allow_redirects=False)
    assert r.status_code == 303
    assert r.headers["Location"] == live.jobs("echo") + "?LAST=50"
    assert http.get(url).status_code == 404
    url = create(http, live, "sleep", {"seconds": "30", "PHASE": "RUN"})
    job_id = url.rsplit("/", 1)[1]
    assert (live.app.config.work_root / job_id).is_dir()
    r = http.post(url, data={"action": "delete"}, allow_redirects=False)
    assert r.status_code == 303 and r.headers["Location"].startswith(
        live.jobs("echo").replace("echo", "sleep")
    )
    assert http.get(url).status_code == 404
    assert not (live.app.config.work_root / job_id).exists()
    assert http.post(url, data={"ACTION": "DELETE"}).status_code == 404
    r = http.post(create(http, live, "echo"), data={"ACTION": "REMOVE"})
    assert r.status_code == 400


def test_job_list_filters(live, http, assert_valid):
    urls = [create(http, live, "echo") for _ in range(4)]
    ids = [u.rsplit("/", 1)[1] for u in urls]
    http.post(f"{urls[0]}/phase", data={"PHASE": "ABORT"})
    run = create(http, live, "echo", {"PHASE": "RUN"})
    wait_final(http, run)
    ids.append(run.rsplit("/", 1)[1])

    def listed(**params):
        r = http.get(live.jobs("echo"), params=params)
        assert r.status_code == 200
        doc = assert_valid(r.content)
        assert doc.get("version") == "1.1"
        return [ref.get("id") for ref in doc]

    everything = listed()
    assert everything == list(reversed(ids))  # newest first
    assert listed(LAST="2") == [ids[4], ids[3]]
    assert listed(phase="ABORTED") == [ids[0]]
    assert set(listed(PHASE=["ABORTED", "COMPLETED"])) == {ids[0], ids[4]}
    assert listed(PHASE="PENDING", LAST="1") == [ids[3]]
    doc = etree.fromstring(http.get(live.jobs("echo")).content)
    ref = doc[0]
    assert ref.get("{http://www.w3.org/1999/xlink}href") == run
    created = ref.findtext(f"{UWS}creationTime")
    assert listed(AFTER=created) == []
    middle = etree.fromstring(http.get(urls[2]).content).findtext(f"{UWS}creationTime")
    assert listed(AFTER=middle) == [ids[4], ids[3]]
    assert listed(AFTER=middle.rstrip("Z")) == [ids[4], ids[3]]  # zone-less = UTC
    for bad in ({"LAST": "0"}, {"LAST": "x"}, {"AFTER": "yesterday"}, {"PHASE": "DONE"}):
        r = http.get(live.jobs("echo"), params=bad)
        assert r.status_code == 400 and r.text.startswith("UsageError")


def test_wait_blocks_until_the_phase_changes(live, http):
    url = create(http, live, "sleep", {"seconds": "1.5", "PHASE": "RUN"})
    doc = etree.fromstring(http.get(url, params={"WAIT": "5", "PHASE": "QUEUED"}).content)
    assert phase_of(doc) == "EXECUTING"
    t0 = time.monotonic()
    doc = etree.fromstring(http.get(url, params={"WAIT": "-1"}).content)
    waited = time.monotonic() - t0
    assert phase_of(doc) == "COMPLETED"
    assert 0.5 < waited < 5
    # Final phase: no blocking at all.
    t0 = time.monotonic()
    http.get(url, params={"WAIT": "30"})
    assert time.monotonic() - t0 < 1


def test_wait_returns_at_once_when_not_waitable(live, http):
    url = create(http, live, "sleep", {"seconds": "20"})
    t0 = time.monotonic()
    assert phase_of(etree.fromstring(http.get(url, params={"WAIT": "5"}).content)) == "PENDING"
    assert time.monotonic() - t0 < 1
    http.post(f"{url}/phase", data={"PHASE": "RUN"})
    t0 = time.monotonic()
    doc = etree.fromstring(http.get(url, params={"WAIT": "5", "PHASE": "COMPLETED"}).content)
    assert time.monotonic() - t0 < 1 and phase_of(doc) in ("QUEUED", "EXECUTING")
    t0 = time.monotonic()
    doc = etree.fromstring(http.get(url, params={"WAIT": "2", "PHASE": "EXECUTING"}).content)
    assert 1.5 < time.monotonic() - t0 < 4 and phase_of(doc) == "EXECUTING"
    assert http.get(url, params={"WAIT": "soon"}).status_code == 400
    assert http.get(url, params={"WAIT": "1", "PHASE": "NOPE"}).status_code == 400
    http.delete(url)


def test_wait_is_woken_by_another_thread_abort(live, http):
    import threading

    import requests

    url = create(http, live, "sleep", {"seconds": "60", "PHASE": "RUN"})
    http.get(url, params={"WAIT": "5", "PHASE": "QUEUED"})
    timer = threading.Timer(0.5, lambda: requests.post(f"{url}/phase", data={"PHASE": "ABORT"}))
    timer.start()
    t0 = time.monotonic()
    doc = etree.fromstring(http.get(url, params={"WAIT": "8"}).content)
    elapsed = time.monotonic() - t0
    timer.join()
    assert phase_of(doc) == "ABORTED"
    assert elapsed < 2.5


def test_quote_follows_recent_run_times(live, http):
    for _ in range(3):
        wait_final(http, create(http, live, "sleep", {"seconds": "0.5", "PHASE": "RUN"}))
    url = create(http, live, "sleep")
    quote = http.get(f"{url}/quote").text
    predicted = datetime.fromisoformat(quote.replace("Z", "+00:00")) - datetime.now(UTC)
    # Median of ~0.5 s runs, not the description's 5 s.
    assert timedelta(seconds=0) < predicted < timedelta(seconds=3)


def test_failing_job_is_200_with_error_summary(live, http, assert_valid):
    url = create(http, live, "fail", {"PHASE": "RUN", "n": "2"})
    wait_final(http, url)
    doc = job_doc(http, url, assert_valid)
    assert phase_of(doc) == "ERROR"
    summary = doc.find(f"{UWS}errorSummary")
    assert summary.get("type") == "fatal" and summary.get("hasDetail") == "true"
    message = summary.findtext(f"{UWS}message")
    assert "ls /nonexistent_dir_$n" in message and "exit status 2" in message
    detail = http.get(f"{url}/error")
    assert detail.status_code == 200 and "nonexistent_dir_2" in detail.text
    assert "start" in http.get(f"{url}/results/stdout").text


def test_case_insensitive_parameter_names_use_the_definition_spelling(live, http):
    url = create(http, live, "echo", {"TEXT": "x", "Scale": "3"})
    params = [p.get("id") for p in etree.fromstring(http.get(url).content).iter(f"{UWS}parameter")]
    assert params == ["text", "n", "scale", "mode"]


def test_request_limits(live, http):
    big = b"x" * (live.app.config.form_max_bytes + 10)
    r = http.post(live.jobs("echo"), data={"text": big}, allow_redirects=False)
    assert r.status_code == 413
    assert list(live.app.config.work_root.iterdir()) == []


def test_value_length_limit(live, http):
    r = http.post(live.jobs("echo"), data={"text": "y" * 70000}, allow_redirects=False)
    assert r.status_code == 400 and "longer than 65536" in r.text
