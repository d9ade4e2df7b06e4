"""LocalExecutor through the live server: process groups, limits, environment, no orphans."""

from __future__ import annotations

import os
import time
from pathlib import Path

from lxml import etree

from tests.conftest import create, group_alive, phase_of, wait_final

UWS = "{http://www.ivoa.net/xml/UWS/v1.0}"


def processes_in(folder: Path) -> list[int]:
    """PIDs of processes whose working directory is ``folder`` (or below)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cwd = os.readlink(entry / "cwd")
            except OSError:
                continue
            if cwd == str(folder) or cwd.startswith(str(folder) + "/"):
                found.append(int(entry.name))
    return found


def pgid_of(live, url: str) -> int:
    job = live.app.jobs.store.get(url.rsplit("/", 1)[1])
    return int(job.external_id.rsplit(":", 1)[1])


def job_dir(live, url: str) -> Path:
    return live.app.config.work_root.resolve() / url.rsplit("/", 1)[1]


def test_execution_duration_ends_the_whole_process_group(live, http):
    url = create(http, live, "sleep", {"seconds": "60", "EXECUTIONDURATION": "1", "PHASE": "RUN"})
    http.get(url, params={"WAIT": "5", "PHASE": "QUEUED"})
    pgid = pgid_of(live, url)
    assert group_alive(pgid)
    assert processes_in(job_dir(live, url))  # bash and its `sleep` child
    t0 = time.monotonic()
    doc = wait_final(http, url)
    assert time.monotonic() - t0 < 5
    assert phase_of(doc) == "ABORTED"
    message = doc.find(f"{UWS}errorSummary").findtext(f"{UWS}message")
    assert message == "executionDuration of 1 s exceeded; the job was stopped"
    assert not group_alive(pgid, wait=3)
    assert processes_in(job_dir(live, url)) == []
    # What the job wrote before the limit is kept.
    results = {r.get("id") for r in doc.iter(f"{UWS}result")}
    assert {"stdout", "stderr"} <= results


def test_abort_leaves_no_process(live, http):
    url = create(http, live, "sleep", {"seconds": "60", "PHASE": "RUN"})
    http.get(url, params={"WAIT": "5", "PHASE": "QUEUED"})
    pgid = pgid_of(live, url)
    http.post(f"{url}/phase", data={"PHASE": "ABORT"})
    assert http.get(f"{url}/phase").text == "ABORTED"
    assert not group_alive(pgid, wait=5)
    assert processes_in(job_dir(live, url)) == []
    doc = etree.fromstring(http.get(url).content)
    assert doc.find(f"{UWS}errorSummary") is None
    assert doc.findtext(f"{UWS}endTime").endswith("Z")


def test_background_children_are_ended_with_the_job(live, http):
    url = create(http, live, "spawner", {"PHASE": "RUN"})
    doc = wait_final(http, url)
    assert phase_of(doc) == "COMPLETED"
    child = int(http.get(f"{url}/results/child").text)
    deadline = time.monotonic() + 3
    while Path(f"/proc/{child}").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not Path(f"/proc/{child}").exists()


def test_values_reach_the_script_as_data_only(live, http, tmp_path):
    marker = tmp_path / "pwned"
    nasty = (
        f"$(touch {marker}) `touch {marker}` ; touch {marker} && echo "
        f"'\"\n{{a,b}} * ~ $HOME ${{PATH}} \\ |& > {marker}"
    )
    os.environ["OPUS_MIN_TEST_SECRET"] = "must-not-leak"
    try:
        url = create(
            http,
            live,
            "envdump",
            {
                "text": nasty,
                "count": "-42",
                "FLAG": "Yes",
                "PHASE": "RUN",
                "extra": "$(touch {marker})",
                "PATH": "/evil",
            },
        )
        doc = wait_final(http, url)
    finally:
        del os.environ["OPUS_MIN_TEST_SECRET"]
    assert phase_of(doc) == "COMPLETED"
    assert not marker.exists()
    raw = http.get(f"{url}/results/env").content
    env = dict(item.split("=", 1) for item in raw.decode().split("\0") if item)
    assert env["text"] == nasty
    assert env["count"] == "-42"
    assert env["flag"] == "true"
    assert env["env"] == "env.bin"
    # Unknown names (even PATH) are recorded but never given to the script.
    assert "extra" not in env
    assert env["PATH"].endswith(":/usr/local/bin:/usr/bin:/bin")
    assert "OPUS_MIN_TEST_SECRET" not in env
    assert env["HOME"] == str(job_dir(live, url))
    params = {p.get("id"): p.text for p in doc.iter(f"{UWS}parameter")}
    assert params["extra"] == "$(touch {marker})" and params["PATH"] == "/evil"


def test_missing_outputs_are_reported_not_invented(live, http):
    url = create(http, live, "lazy", {"PHASE": "RUN"})
    doc = wait_final(http, url)
    assert phase_of(doc) == "ERROR"
    assert doc.find(f"{UWS}errorSummary").findtext(f"{UWS}message") == (
        "the script ended without writing report (report.txt)"
    )
    # A glob result gives one result per file; an optional one may be absent.
    results = {r.get("id"): r.get("mime-type") for r in doc.iter(f"{UWS}result")}
    assert results == {
        "part_1": "text/plain",
        "part_2": "text/plain",
        "stdout": "text/plain",
        "stderr": "text/plain",
    }


def test_concurrency_limit_keeps_jobs_queued(live, http):
    limit = live.app.config.max_concurrent_jobs
    urls = [create(http, live, "sleep", {"seconds": "1", "PHASE": "RUN"}) for _ in range(limit + 2)]
    time.sleep(0.3)
    phases = [http.get(f"{u}/phase").text for u in urls]
    assert phases.count("EXECUTING") == limit
    assert phases.count("QUEUED") == 2
    assert [phase_of(wait_final(http, u)) for u in urls] == ["COMPLETED"] * (limit + 2)
