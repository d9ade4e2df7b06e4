"""Restarts and several server processes sharing one database (real `opus-min serve`)."""

from __future__ import annotations

import signal
import time

import requests
from lxml import etree

from tests.conftest import (
    Remote,
    create,
    group_alive,
    phase_of,
    server_process,
    start_live,
    wait_final,
)

UWS = "{http://www.ivoa.net/xml/UWS/v1.0}"


def test_jobs_results_and_files_survive_a_restart(config, http):
    live = start_live(config)
    done = create(http, live, "echo", {"text": "kept", "n": "1", "PHASE": "RUN"})
    assert phase_of(wait_final(http, done)) == "COMPLETED"
    pending = create(http, live, "echo", {"text": "later", "runId": "p1"})
    before = http.get(done).content
    live.stop()

    live = start_live(config)
    try:
        port_changed = done.replace(done.split("/rest/")[0], live.url)
        assert http.get(port_changed).content == before.replace(
            done.split("/rest/")[0].encode(), live.url.encode()
        )
        assert http.get(f"{port_changed}/results/output").text == "kept\n"
        pending_now = pending.replace(pending.split("/rest/")[0], live.url)
        doc = etree.fromstring(http.get(pending_now).content)
        assert phase_of(doc) == "PENDING" and doc.findtext(f"{UWS}runId") == "p1"
        http.post(f"{pending_now}/phase", data={"PHASE": "RUN"})
        assert phase_of(wait_final(http, pending_now)) == "COMPLETED"
        assert http.get(f"{pending_now}/results/output").text.startswith("later\n")
    finally:
        live.stop()


def test_a_killed_controller_leaves_no_running_job_behind(config, http):
    with server_process(config) as (url, proc):
        remote = Remote(url)
        job = create(http, remote, "sleep", {"seconds": "120", "PHASE": "RUN"})
        doc = etree.fromstring(http.get(job, params={"WAIT": "5", "PHASE": "QUEUED"}).content)
        assert phase_of(doc) == "EXECUTING"
        job_dir = config.work_root.resolve() / job.rsplit("/", 1)[1]
        # EXECUTING means the process was started, not that the script's first line has run.
        deadline = time.monotonic() + 10
        while not (job_dir / "started.txt").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert (job_dir / "started.txt").exists()
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    # The job's process group outlived the crash; the next controller ends it and says why.
    live = start_live(config)
    try:
        job_now = job.replace(url, live.url)
        doc = etree.fromstring(http.get(job_now).content)
        assert phase_of(doc) == "ERROR"
        summary = doc.find(f"{UWS}errorSummary")
        assert summary.get("type") == "transient"
        assert "controller restarted" in summary.findtext(f"{UWS}message")
        pgid = int(live.app.jobs.store.get(job.rsplit("/", 1)[1]).external_id.rsplit(":", 1)[1])
        assert not group_alive(pgid, wait=3), "the orphaned job still runs"
    finally:
        live.stop()


def test_wait_is_woken_by_a_change_made_in_another_process(config, http):
    live = start_live(config)
    try:
        with server_process(config) as (url, _proc):
            other = Remote(url)
            job = create(http, other, "sleep", {"seconds": "60", "PHASE": "RUN"})
            http.get(job, params={"WAIT": "5", "PHASE": "QUEUED"})
            here = job.replace(url, live.url)
            assert http.get(f"{here}/phase").text == "EXECUTING"
            import threading

            timer = threading.Timer(
                1.0, lambda: requests.post(f"{job}/phase", data={"PHASE": "ABORT"})
            )
            timer.start()
            t0 = time.monotonic()
            doc = etree.fromstring(http.get(here, params={"WAIT": "8"}).content)
            elapsed = time.monotonic() - t0
            timer.join()
            assert phase_of(doc) == "ABORTED"
            # Woken by the other process's announcement, not by the 8 s timeout.
            assert 0.8 < elapsed < 3
    finally:
        live.stop()
