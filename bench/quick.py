"""Quick throughput figures: GET job status and POST create against `opus-min serve`.

Starts the production server (waitress) in a temporary folder on a free port, then runs
concurrent clients with keep-alive connections for a few seconds per scenario and prints
requests/s, median and p95 latency. Figures only: nothing here is asserted.

    .venv/bin/python bench/quick.py [--clients 8] [--seconds 5]
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
import threading
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(folder: Path, threads: int) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = dict(
        os.environ,
        OPUS_MIN_DATABASE=str(folder / "db.sqlite"),
        OPUS_MIN_WORK_ROOT=str(folder / "jobs"),
        OPUS_MIN_SERVICES=str(ROOT / "services"),
        OPUS_MIN_PORT=str(port),
        OPUS_MIN_THREADS=str(threads),
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "opus_min", "serve"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(200):
        try:
            requests.get(url + "/", timeout=1)
            return proc, url
        except requests.ConnectionError:
            time.sleep(0.05)
    proc.kill()
    raise SystemExit("server did not start")


def load(name: str, request, clients: int, seconds: float) -> dict[str, float | str]:
    """Run ``request(session)`` in ``clients`` threads for ``seconds``; collect latencies."""
    latencies: list[float] = []
    errors = 0
    lock = threading.Lock()
    stop = time.monotonic() + seconds

    def worker() -> None:
        nonlocal errors
        mine: list[float] = []
        bad = 0
        with requests.Session() as session:
            while time.monotonic() < stop:
                t0 = time.perf_counter()
                ok = request(session)
                mine.append(time.perf_counter() - t0)
                bad += 0 if ok else 1
        with lock:
            latencies.extend(mine)
            errors += bad

    threads = [threading.Thread(target=worker) for _ in range(clients)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - t0
    latencies.sort()
    return {
        "scenario": name,
        "requests": len(latencies),
        "errors": errors,
        "req_per_s": round(len(latencies) / elapsed, 1),
        "median_ms": round(statistics.median(latencies) * 1000, 2),
        "p95_ms": round(latencies[int(len(latencies) * 0.95) - 1] * 1000, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--threads", type=int, default=16)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        proc, url = start_server(Path(tmp), args.threads)
        try:
            jobs = f"{url}/rest/echo"
            job = requests.post(jobs, data={"text": "bench"}, allow_redirects=False)
            job_url = job.headers["Location"]
            rows = [
                load(
                    "GET job phase",
                    lambda s: s.get(f"{job_url}/phase").status_code == 200,
                    args.clients,
                    args.seconds,
                ),
                load(
                    "GET job document",
                    lambda s: s.get(job_url).status_code == 200,
                    args.clients,
                    args.seconds,
                ),
                load(
                    "POST create (303)",
                    lambda s: (
                        s.post(
                            jobs, data={"text": "x", "n": "2"}, allow_redirects=False
                        ).status_code
                        == 303
                    ),
                    args.clients,
                    args.seconds,
                ),
            ]
        finally:
            proc.terminate()
            proc.wait(10)
    print(
        f"opus_min quick bench: {args.clients} clients, {args.seconds:g} s each, "
        f"waitress {args.threads} threads, {os.cpu_count()} cores"
    )
    print(f"{'scenario':<20} {'req/s':>8} {'median ms':>10} {'p95 ms':>8} {'errors':>7}")
    for row in rows:
        print(
            f"{row['scenario']:<20} {row['req_per_s']:>8} {row['median_ms']:>10} "
            f"{row['p95_ms']:>8} {row['errors']:>7}"
        )
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    (out / "quick.json").write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
