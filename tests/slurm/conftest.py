"""Fixtures for the tests against the real single-node cluster (``scripts/slurm-dev start``).

Outside CI the cluster tests are skipped, with the reason, when Slurm is not there; in CI (``CI``
set) they fail instead, so a missing cluster can never pass unnoticed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import pytest

from opus_min.config import Config
from tests.conftest import Live, free_port, server_process, start_live

DATA = Path(__file__).parent / "data"


def _cluster_problem() -> str | None:
    if shutil.which("sbatch") is None:
        return "Slurm is not installed (run `scripts/slurm-dev start` as root)"
    try:
        out = subprocess.run(
            ["sinfo", "-h", "-o", "%T"], capture_output=True, text=True, timeout=20, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"sinfo failed: {exc}"
    states = out.stdout.split()
    if out.returncode != 0 or not any(
        s.rstrip("*~#") in ("idle", "mixed", "allocated") for s in states
    ):
        return f"no Slurm node is up ({(out.stderr or out.stdout).strip()[:200] or 'no node'});"
    return None


@pytest.fixture(scope="session")
def slurm_cluster() -> None:
    problem = _cluster_problem()
    if problem is None:
        return
    if os.environ.get("CI"):
        pytest.fail(f"CI must run the Slurm tests: {problem}")
    pytest.skip(f"{problem} — `sudo scripts/slurm-dev start` enables these tests")


@pytest.fixture
def slurm_config(config: Config, slurm_cluster: None) -> Config:
    """The test configuration on Slurm: a fixed port the jobs call back, the test service."""
    shutil.copy(DATA / "hog.xml", config.services / "hog.xml")
    port = free_port()
    return replace(
        config,
        executor="slurm",
        port=port,
        slurm_callback_url=f"http://127.0.0.1:{port}",
    )


def start_slurm_live(config: Config) -> Live:
    """The app under waitress on the configured port (the jobs' callback URL)."""
    return start_live(config, port=config.port)


def cancel_test_jobs(config: Config) -> None:
    """scancel every Slurm job of this test's job folders that is still in Slurm."""
    out = subprocess.run(
        ["squeue", "-h", "-o", "%i %j"], capture_output=True, text=True, timeout=30, check=False
    )
    ours = (
        {p.name for p in Path(config.work_root).iterdir()} if config.work_root.exists() else set()
    )
    ids = [
        line.split()[0]
        for line in out.stdout.splitlines()
        if len(line.split()) == 2 and line.split()[1].removeprefix("opus-") in ours
    ]
    if ids:
        subprocess.run(["scancel", *ids], timeout=30, check=False)


@pytest.fixture
def slurm_live(slurm_config: Config) -> Iterator[Live]:
    server = start_slurm_live(slurm_config)
    try:
        yield server
    finally:
        server.stop()
        cancel_test_jobs(slurm_config)


@contextmanager
def slurm_server_process(config: Config) -> Iterator[subprocess.Popen[bytes]]:
    """`opus-min serve` on Slurm in its own process, on the configured (callback) port."""
    with server_process(
        config,
        port=config.port,
        OPUS_MIN_EXECUTOR="slurm",
        OPUS_MIN_SLURM_CALLBACK_URL=config.slurm_callback_url,
    ) as (_url, proc):
        yield proc


def slurm_state(slurm_id: str) -> str:
    """JobState as scontrol shows it ('' once Slurm forgot the job)."""
    out = subprocess.run(
        ["scontrol", "show", "job", "-o", slurm_id],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    for field in out.stdout.split():
        if field.startswith("JobState="):
            return field.split("=", 1)[1]
    return ""


def wait_slurm_state(slurm_id: str, wanted: set[str], timeout: float = 20) -> str:
    deadline = time.monotonic() + timeout
    while True:
        state = slurm_state(slurm_id)
        if state in wanted or time.monotonic() > deadline:
            return state
        time.sleep(0.2)
