"""pyvo drives and parses the live server: AsyncTAPJob and the strict UWS parsers."""

from __future__ import annotations

import io
import warnings
from datetime import UTC, datetime, timedelta

import pytest
from pyvo.dal.tap import AsyncTAPJob
from pyvo.io.uws import parse_job, parse_job_list

from tests.conftest import create


def strict_parse_job(body: bytes):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return parse_job(io.BytesIO(body), pedantic=True)


def test_async_tap_job_full_cycle(live, http):
    url = create(http, live, "echo", {"text": "from pyvo", "n": "2"})
    job = AsyncTAPJob(url)
    assert job.phase == "PENDING"
    assert job.uws_version == "1.1"
    assert job.job_id == url.rsplit("/", 1)[1]
    job.execution_duration = 120
    assert job.execution_duration.to_value("s") == 120
    when = datetime.now(UTC) + timedelta(days=1)
    job.destruction = when
    assert abs((job.destruction.to_datetime(timezone=UTC) - when).total_seconds()) < 0.01
    assert job.quote is not None
    job.run()
    job.wait(timeout=30)
    assert job.phase == "COMPLETED"
    job.raise_if_error()
    hrefs = {r.id_: r.href for r in job.results}
    assert set(hrefs) == {"output", "summary", "stdout", "stderr"}
    assert http.get(hrefs["output"]).text == "from pyvo\nfrom pyvo\n"
    assert {r.id_: r.mimetype for r in job.results}["summary"] == "application/json"
    job.delete()
    assert http.get(url).status_code == 404


def test_pyvo_reports_a_failed_job(live, http):
    from pyvo.dal.exceptions import DALQueryError

    job = AsyncTAPJob(create(http, live, "fail"))
    job.run().wait(timeout=30)
    assert job.phase == "ERROR"
    with pytest.raises(DALQueryError, match="nonexistent_dir"):
        job.raise_if_error()


def test_pyvo_abort(live, http):
    job = AsyncTAPJob(create(http, live, "sleep", {"seconds": "60"}))
    job.run()
    job.abort()
    assert job.phase == "ABORTED"


def test_documents_parse_strictly(live, http):
    pending = create(http, live, "echo", {"text": "a&b<c>"})
    done = create(http, live, "fail", {"PHASE": "RUN"})
    AsyncTAPJob(done).wait(timeout=30)
    for url in (pending, done):
        parsed = strict_parse_job(http.get(url).content)
        assert parsed.jobid == url.rsplit("/", 1)[1]
        assert parsed.version == "1.1"
    parsed = strict_parse_job(http.get(done).content)
    assert parsed.phase == "ERROR" and parsed.errorsummary.type_ == "fatal"
    assert parsed.creationtime.to_datetime(timezone=UTC) <= datetime.now(UTC)
    params = {p.id_: p.content for p in strict_parse_job(http.get(pending).content).parameters}
    assert params["text"] == "a&b<c>"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        jobs = parse_job_list(io.BytesIO(http.get(live.jobs("echo")).content))
    assert [j.jobid for j in jobs] == [pending.rsplit("/", 1)[1]]
    assert jobs[0].phase == "PENDING"
