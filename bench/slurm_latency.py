"""Slurm executor latencies on the local cluster (``scripts/slurm-dev start`` first).

Starts ``opus-min serve`` with ``executor = "slurm"`` in a temporary folder on a free port, runs
``--jobs`` echo jobs one after the other and prints, from the controller's own instants and
the runner's log in each job folder:

- submit → EXECUTING: creationTime (POST with PHASE=RUN) → startTime (the job's signed
  ``executing`` callback; includes Slurm's scheduling tick of about 1 s);
- end → COMPLETED: the script's end (runner.log) → endTime (the ``completed`` callback,
  results hashed);
- POST → COMPLETED seen by a client blocked in WAIT.

Figures only: nothing is asserted. ``.venv/bin/python bench/slurm_latency.py [--jobs 10]``
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import requests
from lxml import etree

ROOT = Path(__file__).resolve().parents[1]
UWS = "{http://www.ivoa.net/xml/UWS/v1.0}"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def instant(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def script_end(folder: Path) -> float:
    for line in (folder / ".opus" / "runner.log").read_text().splitlines():
        stamp, _, rest = line.partition(" ")
        if rest.startswith("script-ended"):
            return instant(stamp)
    raise RuntimeError(f"{folder}: no script end in runner.log")


def summary(values: list[float]) -> dict[str, float]:
    return {
        "median": round(statistics.median(values), 3),
        "min": round(min(values), 3),
        "max": round(max(values), 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=10)
    parser.add_argument("--save", help="write the figures as JSON to this file")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="opus-min-slurm-bench-"))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = dict(
        os.environ,
        OPUS_MIN_DATABASE=str(folder / "db.sqlite"),
        OPUS_MIN_WORK_ROOT=str(folder / "jobs"),
        OPUS_MIN_SERVICES=str(ROOT / "services"),
        OPUS_MIN_PORT=str(port),
        OPUS_MIN_EXECUTOR="slurm",
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "opus_min", "serve"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(200):
            try:
                requests.get(url + "/", timeout=1)
                break
            except requests.ConnectionError:
                time.sleep(0.05)
        starting, ending, total = [], [], []
        with requests.Session() as http:
            for _ in range(args.jobs):
                t0 = time.monotonic()
                r = http.post(f"{url}/rest/echo", data={"text": "bench", "PHASE": "RUN"})
                job = r.url
                while True:
                    doc = etree.fromstring(http.get(job, params={"WAIT": "30"}).content)
                    if doc.findtext(f"{UWS}phase") in ("COMPLETED", "ERROR", "ABORTED"):
                        break
                total.append(time.monotonic() - t0)
                if doc.findtext(f"{UWS}phase") != "COMPLETED":
                    raise SystemExit(f"{job}: {doc.findtext(f'{UWS}phase')}")
                created = instant(doc.findtext(f"{UWS}creationTime"))
                started = instant(doc.findtext(f"{UWS}startTime"))
                ended = instant(doc.findtext(f"{UWS}endTime"))
                starting.append(started - created)
                ending.append(ended - script_end(folder / "jobs" / job.rsplit("/", 1)[1]))
        figures = {
            "jobs": args.jobs,
            "submit_to_executing_s": summary(starting),
            "script_end_to_completed_s": summary(ending),
            "post_to_completed_seen_by_wait_s": summary(total),
        }
        print(json.dumps(figures, indent=2))
        if args.save:
            Path(args.save).write_text(json.dumps(figures, indent=2) + "\n")
    finally:
        proc.terminate()
        proc.wait(15)


if __name__ == "__main__":
    main()
