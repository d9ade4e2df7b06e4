"""Destruction: the reaper deletes or archives expired jobs on its own."""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import timedelta

from lxml import etree

from opus_min.uws.model import utcnow
from tests.conftest import create, phase_of, start_live, wait_final

UWS = "{http://www.ivoa.net/xml/UWS/v1.0}"


def expire(live, url: str) -> str:
    job_id = url.rsplit("/", 1)[1]
    live.app.jobs.store._connection().execute(
        "UPDATE jobs SET destruction = ? WHERE job_id = ?",
        ((utcnow() - timedelta(seconds=1)).strftime("%Y-%m-%dT%H:%M:%S.%fZ"), job_id),
    )
    return job_id


def test_reaper_deletes_expired_jobs_by_itself(config, http):
    live = start_live(replace(config, reaper_interval=0.2))
    try:
        keep = create(http, live, "echo")
        running = create(http, live, "sleep", {"seconds": "60", "PHASE": "RUN"})
        http.get(running, params={"WAIT": "5", "PHASE": "QUEUED"})
        ids = [expire(live, running)]
        done = create(http, live, "echo", {"PHASE": "RUN"})
        wait_final(http, done)
        ids.append(expire(live, done))
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and any(
            http.get(u).status_code != 404 for u in (running, done)
        ):
            time.sleep(0.1)
        assert http.get(running).status_code == 404 and http.get(done).status_code == 404
        for job_id in ids:
            assert not (live.app.config.work_root / job_id).exists()
        assert http.get(keep).status_code == 200
    finally:
        live.stop()


def test_archive_policy_keeps_metadata_and_drops_results(config, http):
    live = start_live(replace(config, destruction_policy="archive"))
    try:
        url = create(http, live, "echo", {"PHASE": "RUN"})
        assert phase_of(wait_final(http, url)) == "COMPLETED"
        job_id = expire(live, url)
        assert live.app.jobs.reap() == 1
        doc = etree.fromstring(http.get(url).content)
        assert phase_of(doc) == "ARCHIVED"
        assert list(doc.find(f"{UWS}results")) == []
        assert not (live.app.config.work_root / job_id / "output.txt").exists()
        listed = etree.fromstring(http.get(live.jobs("echo")).content)
        assert len(listed) == 0
        archived = etree.fromstring(
            http.get(live.jobs("echo"), params={"PHASE": "ARCHIVED"}).content
        )
        assert [ref.get("id") for ref in archived] == [job_id]
        r = http.post(f"{url}/destruction", data={"DESTRUCTION": "2030-01-01T00:00:00Z"})
        assert r.status_code == 403
        assert live.app.jobs.reap() == 0
    finally:
        live.stop()
