"""The Slurm executor against the real single-node cluster started by ``scripts/slurm-dev``."""

from __future__ import annotations

import hashlib
import os
import re
import signal
import subprocess
import threading
import time
from pathlib import Path

import requests
from lxml import etree

from opus_min.uws.model import parse_instant
from tests.conftest import create, phase_of, wait_final
from tests.slurm.conftest import (
    cancel_test_jobs,
    slurm_server_process,
    slurm_state,
    start_slurm_live,
    wait_slurm_state,
)

UWS = "{http://www.ivoa.net/xml/UWS/v1.0}"
ENDED = {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT"}


class Remote:
    def __init__(self, url: str) -> None:
        self.url = url

    def jobs(self, service: str) -> str:
        return f"{self.url}/rest/{service}"


def job_id(url: str) -> str:
    return url.rsplit("/", 1)[1]


def slurm_id(live, url: str) -> str:
    """The Slurm job id the controller recorded (waits for sbatch's answer)."""
    deadline = time.monotonic() + 20
    while True:
        handle = live.app.jobs.store.get(job_id(url)).external_id or ""
        if re.fullmatch(r"slurm:[0-9]+", handle) or time.monotonic() > deadline:
            assert re.fullmatch(r"slurm:[0-9]+", handle), handle
            return handle.split(":", 1)[1]
        time.sleep(0.05)


def wait_phase(http, url: str, phase: str, timeout: float = 30) -> etree._Element:
    """WAIT until the job leaves ``phase``... or reaches the one wanted."""
    deadline = time.monotonic() + timeout
    while True:
        doc = etree.fromstring(http.get(url, params={"WAIT": "5"}).content)
        final = phase_of(doc) in ("COMPLETED", "ERROR", "ABORTED", "ARCHIVED")
        if phase_of(doc) == phase or final or time.monotonic() > deadline:
            return doc


def error_message(doc: etree._Element) -> str:
    summary = doc.find(f"{UWS}errorSummary")
    assert summary is not None, etree.tostring(doc)
    return summary.findtext(f"{UWS}message")


def test_a_job_completes_with_results_and_latencies(slurm_live, http, slurm_config):
    text = "Bonjour $(touch pwned) `id`"
    t0 = time.time()
    url = create(http, slurm_live, "echo", {"text": text, "n": "2", "PHASE": "RUN"})
    sid = slurm_id(slurm_live, url)
    doc = wait_final(http, url, timeout=60)
    assert phase_of(doc) == "COMPLETED", etree.tostring(doc)
    output = http.get(f"{url}/results/output")
    assert output.text == f"{text}\n{text}\n"
    results = {r.get("id"): r for r in doc.find(f"{UWS}results")}
    assert {"output", "summary", "stdout", "stderr"} <= set(results)
    folder = slurm_config.work_root / job_id(url)
    assert not (folder / "pwned").exists()
    # Collected by the controller exactly as with the local executor: size and sha256.
    stored = slurm_live.app.jobs.store.get(job_id(url)).result("output")
    assert stored.sha256 == hashlib.sha256(output.content).hexdigest()
    assert stored.size == len(output.content)
    assert http.get(f"{url}/results/stdout").text == "wrote 2 lines\n"
    # The batch script: our options, and no parameter value anywhere in it.
    batch = (folder / ".opus" / "batch.sh").read_text()
    assert f"#SBATCH --job-name=opus-{job_id(url)}" in batch
    assert "#SBATCH --no-requeue" in batch and "#SBATCH --export=NONE" in batch
    assert f"#SBATCH --output={folder}/.opus/stdout.log" in batch
    assert "Bonjour" not in batch and "touch" not in batch
    assert os.stat(folder / ".opus" / "callback").st_mode & 0o077 == 0
    assert os.stat(folder / ".opus" / "environment").st_mode & 0o077 == 0
    assert wait_slurm_state(sid, ENDED) == "COMPLETED"
    # Latencies from the controller's own instants and the runner's log.
    creation = parse_instant(doc.findtext(f"{UWS}creationTime")).timestamp()
    start = parse_instant(doc.findtext(f"{UWS}startTime")).timestamp()
    end = parse_instant(doc.findtext(f"{UWS}endTime")).timestamp()
    ended = _script_end(folder)
    print(
        f"\nslurm latencies: POST→EXECUTING {start - creation:.3f} s,"
        f" script end→COMPLETED {end - ended:.3f} s, total {time.time() - t0:.3f} s"
    )
    assert creation <= start <= end


def _script_end(folder: Path) -> float:
    """When the runner saw the script end (its log line), as a POSIX time."""
    for line in (folder / ".opus" / "runner.log").read_text().splitlines():
        if line.split(" ", 2)[1:2] == ["script-ended"]:
            return parse_instant(line.split(" ", 1)[0]).timestamp()
    raise AssertionError("the runner logged no script end")


def test_a_failing_script_is_an_error_naming_the_command(slurm_live, http):
    url = create(http, slurm_live, "fail", {"PHASE": "RUN"})
    doc = wait_final(http, url, timeout=60)
    assert phase_of(doc) == "ERROR"
    assert "Error in fail running command" in error_message(doc)
    assert "No such file" in http.get(f"{url}/error").text


def test_execution_duration_is_enforced_to_the_second(slurm_live, http):
    url = create(
        http, slurm_live, "sleep", {"seconds": "120", "EXECUTIONDURATION": "3", "PHASE": "RUN"}
    )
    sid = slurm_id(slurm_live, url)
    assert phase_of(wait_phase(http, url, "EXECUTING")) == "EXECUTING"
    started = time.monotonic()
    doc = wait_final(http, url, timeout=60)
    elapsed = time.monotonic() - started
    assert phase_of(doc) == "ABORTED"
    assert "executionDuration of 3 s exceeded" in error_message(doc)
    assert elapsed < 15, elapsed  # Slurm's own limit would take 60-90 s
    assert wait_slurm_state(sid, ENDED) in ENDED
    # What the job wrote before it was stopped is kept.
    assert "stderr" in {r.get("id") for r in doc.find(f"{UWS}results")}


def test_abort_cancels_the_slurm_job(slurm_live, http):
    url = create(http, slurm_live, "sleep", {"seconds": "300", "PHASE": "RUN"})
    sid = slurm_id(slurm_live, url)
    assert phase_of(wait_phase(http, url, "EXECUTING")) == "EXECUTING"
    assert slurm_state(sid) == "RUNNING"
    r = http.post(f"{url}/phase", data={"PHASE": "ABORT"}, allow_redirects=False)
    assert r.status_code == 303
    assert http.get(f"{url}/phase").text == "ABORTED"
    assert wait_slurm_state(sid, ENDED) == "CANCELLED"
    # The job's own last report brings its logs in as results; the phase stays ABORTED.
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        doc = etree.fromstring(http.get(url).content)
        if "stdout" in {r.get("id") for r in doc.find(f"{UWS}results")}:
            break
        time.sleep(0.2)
    assert phase_of(doc) == "ABORTED"
    assert "stdout" in {r.get("id") for r in doc.find(f"{UWS}results")}


def test_delete_cancels_first(slurm_live, http, slurm_config):
    url = create(http, slurm_live, "sleep", {"seconds": "300", "PHASE": "RUN"})
    sid = slurm_id(slurm_live, url)
    assert phase_of(wait_phase(http, url, "EXECUTING")) == "EXECUTING"
    r = http.delete(url, allow_redirects=False)
    assert r.status_code == 303
    assert wait_slurm_state(sid, ENDED) == "CANCELLED"
    assert http.get(url).status_code == 404
    assert not (slurm_config.work_root / job_id(url)).exists()


def test_two_jobs_run_concurrently(slurm_live, http):
    urls = [create(http, slurm_live, "sleep", {"seconds": "4", "PHASE": "RUN"}) for _ in range(2)]
    docs = [wait_final(http, url, timeout=60) for url in urls]
    assert [phase_of(d) for d in docs] == ["COMPLETED", "COMPLETED"]
    spans = [
        (
            parse_instant(d.findtext(f"{UWS}startTime")),
            parse_instant(d.findtext(f"{UWS}endTime")),
        )
        for d in docs
    ]
    # Each started before the other ended: they overlapped on the node.
    assert spans[0][0] < spans[1][1] and spans[1][0] < spans[0][1], spans
    assert [http.get(f"{u}/results/waited").text for u in urls] == ["waited 4 s\n"] * 2


def _tokens(folder: Path) -> dict[str, str]:
    lines = (folder / ".opus" / "callback").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines)


def test_forged_and_replayed_callbacks_are_refused(slurm_live, http, slurm_config):
    url = create(http, slurm_live, "sleep", {"seconds": "300", "PHASE": "RUN"})
    other = create(http, slurm_live, "sleep", {"seconds": "1"})
    assert phase_of(wait_phase(http, url, "EXECUTING")) == "EXECUTING"
    tokens = _tokens(slurm_config.work_root / job_id(url))
    callback = f"{slurm_live.url}/callback/{job_id(url)}"
    refused = [
        {"event": "completed", "signature": "0" * 64},  # forged
        {"event": "completed", "signature": tokens["executing"]},  # another event's token
        {"event": "executing", "signature": tokens["executing"]},  # replayed
        {"event": "finished", "signature": tokens["completed"]},  # no such event
    ]
    for form in refused:
        r = http.post(callback, data=form)
        assert r.status_code == 403, (form, r.text)
        assert r.headers["Content-Type"].startswith("text/plain")
    # A token of this job is worth nothing for another job.
    r = http.post(
        f"{slurm_live.url}/callback/{job_id(other)}",
        data={"event": "completed", "signature": tokens["completed"]},
    )
    assert r.status_code == 403
    assert http.post(callback, data={"event": "completed"}).status_code == 400
    assert http.post(callback, data="x" * 100).status_code == 400
    assert http.get(callback).status_code == 405
    assert http.get(f"{url}/phase").text == "EXECUTING"
    assert http.get(f"{other}/phase").text == "PENDING"
    http.post(f"{url}/phase", data={"PHASE": "ABORT"})
    assert http.get(f"{url}/phase").text == "ABORTED"


def test_slurm_options_and_what_only_slurm_can_tell(slurm_live, http, slurm_config):
    """A service opens slurm_* options; Slurm's hook reports jobs that cannot report."""
    cpus = int(subprocess.run(["nproc"], capture_output=True, text=True).stdout)
    hooked = (
        "opus-min-jobcomp"
        in subprocess.run(["scontrol", "show", "config"], capture_output=True, text=True).stdout
    )
    # Too much for the node: sbatch refuses, the job is an ERROR saying why.
    url = create(http, slurm_live, "hog", {"slurm_ntasks": "4096", "PHASE": "RUN"})
    doc = wait_final(http, url, timeout=30)
    assert phase_of(doc) == "ERROR"
    assert error_message(doc).startswith("sbatch failed:")
    # The whole node for one job: the next one waits in Slurm, and UWS shows it QUEUED.
    big = create(
        http,
        slurm_live,
        "hog",
        {"seconds": "300", "slurm_cpus_per_task": str(cpus), "PHASE": "RUN"},
    )
    assert phase_of(wait_phase(http, big, "EXECUTING")) == "EXECUTING"
    waiting = create(http, slurm_live, "hog", {"seconds": "1", "PHASE": "RUN"})
    sid = slurm_id(slurm_live, waiting)
    time.sleep(2.5)
    assert slurm_state(sid) == "PENDING"
    assert http.get(f"{waiting}/phase").text == "QUEUED"
    if hooked:
        # Cancelled in Slurm while pending: the job never ran, only the hook can tell.
        subprocess.run(["scancel", sid], check=True)
        doc = wait_final(http, waiting, timeout=20)
        assert phase_of(doc) == "ABORTED"
        assert "cancelled in Slurm" in error_message(doc)
        # The batch shell killed by SIGKILL (as by the OOM killer): no report from the job.
        runner = _runner_pid(slurm_config.work_root / job_id(big))
        os.kill(runner, signal.SIGKILL)
        doc = wait_final(http, big, timeout=30)
        assert phase_of(doc) == "ERROR"
        assert "killed by signal SIGKILL" in error_message(doc)
    else:
        print("\nnote: the opus_min jobcomp hook is not installed; hook checks skipped")
    cpus_file = http.get(f"{big}/results/cpus")
    assert cpus_file.status_code in (200, 404)


def _runner_pid(folder: Path) -> int:
    needle = f"{folder}/.opus/runner.sh".encode()
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if needle in (proc / "cmdline").read_bytes():
                    return int(proc.name)
            except OSError:
                continue
    raise AssertionError("no runner process")


def test_a_controller_killed_with_sigkill_finds_every_true_final_phase(slurm_config, http):
    try:
        _killed_controller_scenario(slurm_config, http)
    finally:
        cancel_test_jobs(slurm_config)


def _killed_controller_scenario(config, http) -> None:
    with slurm_server_process(config) as proc:
        remote = Remote(f"http://127.0.0.1:{config.port}")
        # Two run (one CPU each, a 2-CPU node in CI), the others wait in Slurm (QUEUED).
        # Long enough to outlive the controller's absence even on a busy machine.
        later = create(http, remote, "sleep", {"seconds": "60", "PHASE": "RUN"})
        done = create(http, remote, "sleep", {"seconds": "8", "PHASE": "RUN"})
        assert phase_of(wait_phase(http, later, "EXECUTING")) == "EXECUTING"
        # Meant to end while no controller listens; on a slow node it may end before the kill,
        # which the restarted controller must get right all the same.
        assert phase_of(wait_phase(http, done, "EXECUTING")) in ("EXECUTING", "COMPLETED")
        cancelled = create(http, remote, "sleep", {"seconds": "300", "PHASE": "RUN"})
        timed = create(
            http, remote, "sleep", {"seconds": "120", "EXECUTIONDURATION": "2", "PHASE": "RUN"}
        )
        failed = create(http, remote, "fail", {"PHASE": "RUN"})
        ids = {}
        for url in (later, done, cancelled, timed, failed):
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                out = subprocess.run(
                    ["squeue", "-h", "-t", "all", f"--name=opus-{job_id(url)}", "-o", "%i"],
                    capture_output=True,
                    text=True,
                ).stdout.split()
                if out:
                    ids[url] = out[-1]
                    break
                time.sleep(0.1)
            assert url in ids, url
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    # While no controller listens: three jobs end on their own, one is cancelled in Slurm.
    subprocess.run(["scancel", ids[cancelled]], check=True)
    # Generous: with no controller each job also spends its callback retries (a few seconds),
    # and the jobs run one after another on one CPU of a possibly busy machine.
    for url in (done, cancelled, timed, failed):
        assert wait_slurm_state(ids[url], ENDED, timeout=120) in ENDED
    assert slurm_state(ids[later]) == "RUNNING"

    with slurm_server_process(config):
        expected = {done: "COMPLETED", timed: "ABORTED", cancelled: "ABORTED", failed: "ERROR"}
        for url, phase in expected.items():
            doc = etree.fromstring(http.get(url).content)
            assert phase_of(doc) == phase, (url, etree.tostring(doc))
        assert http.get(f"{done}/results/waited").text == "waited 8 s\n"
        assert "executionDuration of 2 s exceeded" in http.get(f"{timed}/error").text
        assert "cancelled in Slurm" in http.get(f"{cancelled}/error").text
        assert "Error in fail running command" in http.get(f"{failed}/error").text
        # Still running at restart: EXECUTING, then its own callback reaches the new controller.
        assert http.get(f"{later}/phase").text == "EXECUTING"
        doc = wait_final(http, later, timeout=120)
        assert phase_of(doc) == "COMPLETED"
        assert http.get(f"{later}/results/waited").text == "waited 60 s\n"


def test_no_sbatch_means_error_and_the_server_keeps_running(slurm_config, http):
    from dataclasses import replace

    config = replace(slurm_config, slurm_bin="/nonexistent/slurm/bin")
    live = start_slurm_live(config)
    try:
        url = create(http, live, "echo", {"text": "x", "PHASE": "RUN"})
        doc = wait_final(http, url, timeout=20)
        assert phase_of(doc) == "ERROR"
        assert "sbatch not found" in error_message(doc)
        assert http.get(f"{live.url}/rest/echo").status_code == 200
    finally:
        live.stop()


def test_waiters_are_woken_by_callbacks(slurm_live, http):
    url = create(http, slurm_live, "sleep", {"seconds": "2", "PHASE": "RUN"})
    assert phase_of(wait_phase(http, url, "EXECUTING")) == "EXECUTING"
    result: list[str] = []

    def waiter() -> None:
        with requests.Session() as session:
            doc = etree.fromstring(session.get(url, params={"WAIT": "30"}).content)
            result.append(phase_of(doc))

    thread = threading.Thread(target=waiter)
    t0 = time.monotonic()
    thread.start()
    thread.join(40)
    assert result == ["COMPLETED"]
    assert time.monotonic() - t0 < 15
