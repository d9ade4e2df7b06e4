"""opus_min benchmark suite: P1-P7 against `opus-min serve`, each with a reference measured in
the same run. Prints one table and writes it as JSON (bench/results/bench.json).

    .venv/bin/python bench/run.py [--quick] [--only P1,P3]

Figures only; nothing is asserted. See bench/README.md for how to read them.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from opus_min.provsap.records import GeneratedRecord, UsedRecord  # noqa: E402
from opus_min.uws.model import Job, Parameter, Phase  # noqa: E402
from opus_min.uws.store import JobStore  # noqa: E402

RESULTS = ROOT / "bench" / "results"
WRK = shutil.which("wrk")
THREADS = 16
CLK_TCK = os.sysconf("SC_CLK_TCK")


@dataclass
class Row:
    scenario: str
    what: str
    median: float | None
    p95: float | None
    unit: str
    reference: str = ""
    ratio: float | None = None
    target: str = ""
    met: bool | None = None
    extra: dict[str, object] = field(default_factory=dict)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_up(url: str, proc: subprocess.Popen[bytes]) -> None:
    for _ in range(400):
        if proc.poll() is not None:
            raise SystemExit(f"server for {url} exited with {proc.returncode}")
        try:
            requests.get(url, timeout=1)
            return
        except requests.ConnectionError:
            time.sleep(0.05)
    raise SystemExit(f"{url} did not come up")


class Server:
    """`opus-min serve` in its own process with its own database."""

    def __init__(self, folder: Path, threads: int = THREADS, **env: str) -> None:
        self.folder = folder
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        environ = dict(
            os.environ,
            OPUS_MIN_DATABASE=str(folder / "db.sqlite"),
            OPUS_MIN_WORK_ROOT=str(folder / "jobs"),
            OPUS_MIN_SERVICES=str(ROOT / "services"),
            OPUS_MIN_PORT=str(self.port),
            OPUS_MIN_THREADS=str(threads),
        )
        environ.update(env)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "opus_min", "serve"],
            env=environ,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_up(self.url + "/capabilities", self.proc)

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK

    def peak_rss_mb(self) -> float:
        status = Path(f"/proc/{self.proc.pid}/status").read_text()
        return int(re.search(r"VmHWM:\s+(\d+) kB", status).group(1)) / 1024

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


# -- load generation -------------------------------------------------------------------------

WRK_SCRIPT = """
wrk.method = "{method}"
wrk.body = "{body}"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
done = function(summary, latency, requests)
  io.write(string.format("RESULT %d %d %f %f %d\\n", summary.requests,
    summary.errors.status + summary.errors.connect + summary.errors.read
    + summary.errors.write + summary.errors.timeout,
    latency:percentile(50) / 1000.0, latency:percentile(95) / 1000.0, summary.duration))
end
"""


def wrk(url: str, seconds: float, connections: int, method: str = "GET", body: str = "") -> dict:
    """Requests/s and latency percentiles (ms) from wrk with keep-alive connections."""
    if WRK is None:
        return python_load(url, seconds, connections, method, body)
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(WRK_SCRIPT.format(method=method, body=body))
    try:
        out = subprocess.run(
            [WRK, "-t2", f"-c{connections}", f"-d{seconds}s", "-s", script.name, url],
            capture_output=True,
            text=True,
            timeout=seconds + 30,
        ).stdout
    finally:
        os.unlink(script.name)
    match = re.search(r"RESULT (\d+) (\d+) ([\d.]+) ([\d.]+) (\d+)", out)
    if not match:
        raise SystemExit(f"wrk failed:\n{out}")
    count, errors, p50, p95, duration_us = match.groups()
    return {
        "rps": int(count) / (int(duration_us) / 1e6),
        "p50": float(p50),
        "p95": float(p95),
        "errors": int(errors),
        "requests": int(count),
        "tool": "wrk",
    }


def python_load(url: str, seconds: float, clients: int, method: str, body: str) -> dict:
    """Fallback load generator (threads with requests sessions) when wrk is absent."""
    latencies: list[float] = []
    errors = 0
    lock = threading.Lock()
    stop = time.monotonic() + seconds

    def worker() -> None:
        nonlocal errors
        mine, bad = [], 0
        with requests.Session() as session:
            while time.monotonic() < stop:
                t0 = time.perf_counter()
                r = session.request(method, url, data=body or None, allow_redirects=False)
                mine.append(time.perf_counter() - t0)
                bad += r.status_code >= 400
        with lock:
            latencies.extend(mine)
            errors += bad

    threads = [threading.Thread(target=worker) for _ in range(clients)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    latencies.sort()
    return {
        "rps": len(latencies) / (time.monotonic() - t0),
        "p50": statistics.median(latencies) * 1000,
        "p95": latencies[int(0.95 * len(latencies)) - 1] * 1000,
        "errors": errors,
        "requests": len(latencies),
        "tool": "python",
    }


def timed_gets(session: requests.Session, url: str, params: dict, n: int) -> list[float]:
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        r = session.get(url, params=params)
        out.append((time.perf_counter() - t0) * 1000)
        assert r.status_code == 200, r.text
    return out


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, max(0, round(q / 100 * len(values)) - 1))]


# -- scenarios -------------------------------------------------------------------------------


def p1_p2(tmp: Path, seconds: float, rounds: int) -> list[Row]:
    rows = []
    hello_port = free_port()
    hello = subprocess.Popen(
        [sys.executable, str(ROOT / "bench" / "hello.py"), str(hello_port), str(THREADS)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    server = Server(tmp / "p1")
    try:
        hello_url = f"http://127.0.0.1:{hello_port}"
        wait_up(hello_url, hello)
        jobs = f"{server.url}/rest/echo"
        job_url = requests.post(jobs, data={"text": "bench"}, allow_redirects=False).headers[
            "Location"
        ]
        targets = (("GET job phase", f"{job_url}/phase"), ("GET job document", job_url))
        # Rounds of ceiling, /phase, document: each ratio compares neighbouring windows, and
        # the median of the rounds damps what other processes on the machine do meanwhile.
        runs: dict[str, list[tuple[dict, dict]]] = {what: [] for what, _ in targets}
        for _ in range(rounds):
            ceiling = wrk(hello_url + "/", seconds, 16)
            for what, url in targets:
                runs[what].append((wrk(url, seconds, 16), ceiling))
        for what, _ in targets:
            ratios = [ours["rps"] / ceil["rps"] for ours, ceil in runs[what]]
            ratio = statistics.median(ratios)
            rows.append(
                Row(
                    "P1",
                    what,
                    statistics.median(ours["p50"] for ours, _ in runs[what]),
                    statistics.median(ours["p95"] for ours, _ in runs[what]),
                    "ms",
                    "hello world "
                    + "/".join(f"{ceil['rps']:.0f}" for _, ceil in runs[what])
                    + " req/s",
                    ratio,
                    ">= 0.40",
                    ratio >= 0.40,
                    {
                        "rps": [round(ours["rps"], 1) for ours, _ in runs[what]],
                        "ratios": [round(r, 3) for r in ratios],
                        "errors": sum(ours["errors"] for ours, _ in runs[what]),
                        "tool": runs[what][0][0]["tool"],
                    },
                )
            )
        ceiling_post = wrk(hello_url + "/", seconds, 16, "POST", "text=x")
        ours = wrk(jobs, seconds, 16, "POST", "text=x&n=2")
        ratio = ours["rps"] / ceiling_post["rps"]
        rows.append(
            Row(
                "P2",
                "POST create (303)",
                ours["p50"],
                ours["p95"],
                "ms",
                f"hello world POST {ceiling_post['rps']:.0f} req/s",
                ratio,
                "",
                None,
                {"rps": round(ours["rps"], 1), "errors": ours["errors"]},
            )
        )
    finally:
        server.stop()
        hello.terminate()
        hello.wait(10)
    return rows


def seed(folder: Path, count: int) -> datetime:
    """`count` jobs through JobStore (10 EXECUTING, the rest finished or pending).

    Returns an instant after which 20 jobs were created (for AFTER)."""
    store = JobStore(folder / "db.sqlite")
    start = datetime(2026, 1, 1, tzinfo=UTC)
    # A live process (this one) "runs" the EXECUTING jobs, so the server does not recover them.
    handle = f"local:{socket.gethostname()}:{os.getpid()}:"
    phases = [Phase.COMPLETED, Phase.ERROR, Phase.ABORTED, Phase.PENDING]

    def jobs():
        for i in range(count):
            phase = Phase.EXECUTING if i % (count // 10) == 5 else phases[i % 4]
            created = start + timedelta(seconds=i)
            yield Job(
                id=f"{i:09d}b",
                service="echo",
                owner="",
                phase=phase,
                creation_time=created,
                execution_duration=60,
                destruction=created + timedelta(days=3650),
                parameters=(Parameter("text", "x"), Parameter("n", "1")),
                external_id=handle if phase is Phase.EXECUTING else None,
            )

    store.insert_many(jobs())
    store.close()
    return start + timedelta(seconds=count - 21, milliseconds=500)


def p3_p7(tmp: Path, repeat: int) -> list[Row]:
    figures = {}
    rss = {}
    for count in (1_000, 100_000):
        folder = tmp / f"p3-{count}"
        folder.mkdir()
        t0 = time.monotonic()
        after = seed(folder, count)
        seeded = time.monotonic() - t0
        server = Server(folder)
        try:
            url = f"{server.url}/rest/echo"
            with requests.Session() as session:
                queries = {
                    "LAST=20": {"LAST": "20"},
                    "PHASE=EXECUTING": {"PHASE": "EXECUTING"},
                    "AFTER": {"AFTER": after.strftime("%Y-%m-%dT%H:%M:%S.%fZ")},
                }
                for name, params in queries.items():
                    timed_gets(session, url, params, 5)  # warm-up
                    figures[(count, name)] = timed_gets(session, url, params, repeat)
                    body = session.get(url, params=params).content
                    figures[(count, name, "n")] = body.count(b"<uws:jobref")
            rss[count] = server.peak_rss_mb()
        finally:
            server.stop()
        figures[(count, "seed")] = seeded
    rows = []
    for name in ("LAST=20", "PHASE=EXECUTING", "AFTER"):
        small, big = figures[(1_000, name)], figures[(100_000, name)]
        ratio = statistics.median(big) / statistics.median(small)
        rows.append(
            Row(
                "P3",
                f"list {name} at 100k",
                statistics.median(big),
                pct(big, 95),
                "ms",
                f"1k: {statistics.median(small):.2f} ms",
                ratio,
                "<= 2",
                ratio <= 2,
                {"jobs_returned": figures[(100_000, name, "n")]},
            )
        )
    rows.append(
        Row(
            "P7",
            "peak RSS, 100k jobs (P3)",
            rss[100_000],
            None,
            "MB",
            f"1k: {rss[1_000]:.0f} MB",
            rss[100_000] / rss[1_000],
            "<= 100 MB",
            rss[100_000] <= 100,
            {"seed_seconds_100k": round(figures[(100_000, "seed")], 1)},
        )
    )
    return rows


def p4(tmp: Path, jobs_count: int) -> list[Row]:
    # Reference: the same script run directly with bash, one after the other.
    env = dict(
        os.environ,
        text="Hello World",
        n="3",
        scale="1.0",
        mode="as-is",
        output="output.txt",
        summary="summary.json",
    )
    work = tmp / "p4-direct"
    work.mkdir()
    t0 = time.perf_counter()
    for _ in range(50):
        subprocess.run(
            ["bash", str(ROOT / "services" / "echo.sh")],
            cwd=work,
            env=env,
            check=True,
            stdout=subprocess.DEVNULL,
        )
    direct_ms = (time.perf_counter() - t0) / 50 * 1000
    server = Server(tmp / "p4")
    try:
        url = f"{server.url}/rest/echo"
        t0 = time.perf_counter()
        with requests.Session() as session:
            for _ in range(jobs_count):
                r = session.post(url, data={"PHASE": "RUN"}, allow_redirects=False)
                assert r.status_code == 303
            while True:
                body = session.get(url, params={"PHASE": ["PENDING", "QUEUED", "EXECUTING"]})
                if b"<uws:jobref" not in body.content:
                    break
                time.sleep(0.05)
            elapsed = time.perf_counter() - t0
            done = session.get(url, params={"PHASE": "COMPLETED"}).content.count(b"<uws:jobref")
    finally:
        server.stop()
    per_job = elapsed / jobs_count * 1000
    return [
        Row(
            "P4",
            f"{jobs_count} trivial jobs, wall per job",
            per_job,
            None,
            "ms",
            f"bash directly {direct_ms:.1f} ms/job",
            per_job / direct_ms,
            "<= 50 ms",
            per_job <= 50,
            {"completed": done, "total_seconds": round(elapsed, 2), "concurrency": 4},
        )
    ]


def p5(tmp: Path, waiters: int) -> list[Row]:
    server = Server(tmp / "p5", threads=waiters + 16, OPUS_MIN_MAX_CONCURRENT_JOBS=str(waiters))
    latencies: list[float] = []
    lock = threading.Lock()
    try:
        url = f"{server.url}/rest/sleep"
        with requests.Session() as session:
            job_urls = [
                session.post(
                    url, data={"seconds": "12", "PHASE": "RUN"}, allow_redirects=False
                ).headers["Location"]
                for _ in range(waiters)
            ]
            for job in job_urls:  # all EXECUTING before the waiters start
                session.get(job, params={"WAIT": "10", "PHASE": "QUEUED"})

        def waiter(job: str) -> None:
            with requests.Session() as s:
                r = s.get(job, params={"WAIT": "30"}, timeout=60)
                received = datetime.now(UTC)
            end = re.search(rb"<uws:endTime>([^<]+)</uws:endTime>", r.content)
            if end:
                ended = datetime.fromisoformat(end.group(1).decode().replace("Z", "+00:00"))
                with lock:
                    latencies.append((received - ended).total_seconds() * 1000)

        threads = [threading.Thread(target=waiter, args=(j,)) for j in job_urls]
        for t in threads:
            t.start()
        time.sleep(1.0)
        cpu0, wall0 = server.cpu_seconds(), time.monotonic()
        time.sleep(1.5)
        idle_cpu = (server.cpu_seconds() - cpu0) / (time.monotonic() - wall0)
        for t in threads:
            t.join()
    finally:
        server.stop()
    return [
        Row(
            "P5",
            f"{waiters} WAIT=30, phase change → answer",
            statistics.median(latencies),
            pct(latencies, 95),
            "ms",
            f"server CPU while waiting {idle_cpu * 100:.1f} %",
            None,
            "p95 <= 100 ms",
            pct(latencies, 95) <= 100,
            {"answered_with_end_time": len(latencies), "idle_cpu_fraction": round(idle_cpu, 4)},
        )
    ]


def seed_chain(folder: Path, count: int) -> list[str]:
    """A chain of `count` finished echo jobs through JobStore: job i used job i-1's output
    (same sha256), so ProvSAP from the last job walks back through all of them."""
    store = JobStore(folder / "db.sqlite")
    start = datetime(2026, 1, 1, tzinfo=UTC)
    ids = [f"{i:09d}c" for i in range(count)]
    empty = hashlib.sha256(b"").hexdigest()

    def sha(i: int) -> str:
        return hashlib.sha256(f"output {i}".encode()).hexdigest()

    store.insert_many(
        Job(
            id=job_id,
            service="echo",
            owner="",
            phase=Phase.COMPLETED,
            creation_time=start + timedelta(seconds=i),
            execution_duration=60,
            destruction=start + timedelta(days=3650),
            start_time=start + timedelta(seconds=i),
            end_time=start + timedelta(seconds=i + 1),
            parameters=(Parameter("text", "x"), Parameter("n", "1")),
        )
        for i, job_id in enumerate(ids)
    )
    for i, job_id in enumerate(ids):
        done = start + timedelta(seconds=i + 1)
        if i:
            used = UsedRecord(
                job_id, "input", sha(i - 1), 10, "text/plain", "input.txt", None, done
            )
            store.record_inputs(job_id, [used])
        store.record_results(
            job_id,
            [
                GeneratedRecord(job_id, "output", sha(i), 10, "text/plain", "output.txt", done),
                GeneratedRecord(job_id, "stdout", empty, 0, "text/plain", "stdout.log", done),
            ],
        )
    store.close()
    return ids


def p6(tmp: Path, repeat: int) -> list[Row]:
    folder = tmp / "p6"
    folder.mkdir()
    t0 = time.monotonic()
    ids = seed_chain(folder, 1_000)
    seeded = time.monotonic() - t0
    server = Server(folder)
    rows = []
    try:
        url = f"{server.url}/provsap"
        with requests.Session() as session:
            for what, params in (
                ("BACK from last", {"ID": ids[-1], "DEPTH": "ALL"}),
                ("FORTH from first", {"ID": ids[0], "DEPTH": "ALL", "DIRECTION": "FORTH"}),
            ):
                timed_gets(session, url, params, 2)  # warm-up (first serialisation imports)
                times = timed_gets(session, url, params, repeat)
                body = session.get(url, params=params)
                doc = body.json()
                med = statistics.median(times)
                rows.append(
                    Row(
                        "P6",
                        f"ProvSAP DEPTH=ALL 1000 jobs, {what}",
                        med,
                        pct(times, 95),
                        "ms",
                        f"seeded in {seeded:.1f} s",
                        None,
                        "<= 1 s",
                        med <= 1000,
                        {
                            "activities": len(doc.get("activity", {})),
                            "entities": len(doc.get("entity", {})),
                            "bytes": len(body.content),
                        },
                    )
                )
    finally:
        server.stop()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="shorter runs (smoke)")
    parser.add_argument("--only", default="P1,P2,P3,P4,P5,P6,P7")
    args = parser.parse_args()
    only = set(args.only.upper().split(","))
    seconds = 2 if args.quick else 5
    rows: list[Row] = []
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        if only & {"P1", "P2"}:
            rows += p1_p2(tmp, seconds, 1 if args.quick else 3)
        if only & {"P3", "P7"}:
            rows += p3_p7(tmp, 20 if args.quick else 100)
        if "P4" in only:
            rows += p4(tmp, 100 if args.quick else 500)
        if "P5" in only:
            rows += p5(tmp, 50 if args.quick else 200)
        if "P6" in only:
            rows += p6(tmp, 5 if args.quick else 10)
    total = time.monotonic() - started
    print(
        f"opus_min bench — {platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}, load tool {'wrk' if WRK else 'python'}, "
        f"{THREADS} server threads, {total:.0f} s"
    )
    header = (
        f"{'':4} {'scenario':<38} {'median':>9} {'p95':>9} {'unit':<4} {'ratio':>7}"
        "  target     met  reference"
    )
    print(header)
    print("-" * len(header))
    for r in rows:
        fmt = lambda v: "-" if v is None else f"{v:.2f}"  # noqa: E731
        met = "-" if r.met is None else ("yes" if r.met else "NO")
        print(
            f"{r.scenario:4} {r.what:<38} {fmt(r.median):>9} {fmt(r.p95):>9} {r.unit:<4} "
            f"{fmt(r.ratio):>7}  {r.target:<10} {met:<4} {r.reference}"
            + (f"  {r.extra}" if r.extra else "")
        )
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / "bench.json"
    out.write_text(
        json.dumps(
            {"seconds": round(total, 1), "rows": [r.__dict__ for r in rows]}, indent=2, default=str
        )
    )
    print(f"written to {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
