"""Load: many concurrent clients mixing create, status, WAIT and list against `opus-min serve`.

Starts the production server (waitress, ``auth = "token"``) on 127.0.0.1 in a temporary
folder, adds users with ``opus-min users add``, then runs ``--clients`` threads for
``--seconds``, each with its own keep-alive session and one of the users' tokens. Afterwards it
checks what must hold under load and prints the figures:

- no 5xx answer and no "database is locked" (in any answer or in the server log);
- no lost and no duplicated job: every job a client was told about (303 Location) is in its
  owner's list exactly once, and every listed job was created by one of that owner's clients;
- nobody sees another user's job.

    .venv/bin/python bench/load.py [--clients 200] [--seconds 60] [--users 4]

Exit status 0 when every check holds, 1 otherwise. Not part of ``make test``.
"""

from __future__ import annotations

import argparse
import collections
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests
from lxml import etree

ROOT = Path(__file__).resolve().parents[1]
UWS = "{http://www.ivoa.net/xml/UWS/v1.0}"
OPERATIONS = (("create", 25), ("status", 35), ("wait", 15), ("list", 25))
"""The mix: operation and weight."""


@dataclass
class Report:
    """Everything the clients saw."""

    seconds: float = 0.0
    latencies: dict[str, list[float]] = field(default_factory=lambda: collections.defaultdict(list))
    statuses: collections.Counter[int] = field(default_factory=collections.Counter)
    failures: collections.Counter[str] = field(default_factory=collections.Counter)
    locked: int = 0
    created: dict[str, list[str]] = field(default_factory=lambda: collections.defaultdict(list))
    problems: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def requests(self) -> int:
        return sum(len(v) for v in self.latencies.values())

    @property
    def server_errors(self) -> int:
        return sum(n for code, n in self.statuses.items() if code >= 500)


def _client(base: str, user: str, token: str, deadline: float, report: Report, seed: int) -> None:
    rng = random.Random(seed)
    names = [name for name, _ in OPERATIONS]
    weights = [weight for _, weight in OPERATIONS]
    mine: list[str] = []
    jobs_url = f"{base}/rest/echo"
    with requests.Session() as http:
        http.headers["Authorization"] = f"Bearer {token}"
        while time.monotonic() < deadline:
            op = rng.choices(names, weights)[0]
            if op in ("status", "wait") and not mine:
                op = "create"
            t0 = time.monotonic()
            try:
                if op == "create":
                    data = {"text": f"load {user} {rng.random()}", "n": str(rng.randint(1, 3))}
                    if rng.random() < 0.5:
                        data["PHASE"] = "RUN"
                    r = http.post(jobs_url, data=data, allow_redirects=False, timeout=60)
                    if r.status_code == 303:
                        mine.append(r.headers["Location"].rsplit("/", 1)[1])
                elif op == "status":
                    r = http.get(f"{jobs_url}/{rng.choice(mine)}", timeout=60)
                elif op == "wait":
                    r = http.get(f"{jobs_url}/{rng.choice(mine)}", params={"WAIT": "3"}, timeout=60)
                else:
                    r = http.get(jobs_url, params={"LAST": "20"}, timeout=60)
            except requests.RequestException as exc:
                with report.lock:
                    report.failures[type(exc).__name__] += 1
                continue
            elapsed = time.monotonic() - t0
            locked = "database is locked" in r.text
            with report.lock:
                report.latencies[op].append(elapsed)
                report.statuses[r.status_code] += 1
                report.locked += locked
                if r.status_code >= 400 and len(report.problems) < 20:
                    report.problems.append(f"{op}: {r.status_code} {r.text[:200]!r}")
    with report.lock:
        report.created[user].extend(mine)


def run_load(
    base: str, tokens: dict[str, str], admin_token: str, clients: int, seconds: float
) -> Report:
    """Run the clients (round-robin over the users), then check lists against what was made."""
    report = Report()
    deadline = time.monotonic() + seconds
    users = sorted(tokens)
    threads = [
        threading.Thread(
            target=_client,
            args=(base, users[i % len(users)], tokens[users[i % len(users)]], deadline, report, i),
            daemon=True,
        )
        for i in range(clients)
    ]
    t0 = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(seconds + 90)
    report.seconds = time.monotonic() - t0
    if any(thread.is_alive() for thread in threads):
        report.problems.append("some clients did not finish in time")
    _check_lists(base, tokens, admin_token, report)
    return report


def _listed(base: str, token: str) -> list[tuple[str, str]]:
    r = requests.get(f"{base}/rest/echo", headers={"Authorization": f"Bearer {token}"}, timeout=120)
    r.raise_for_status()
    return [(ref.get("id"), ref.findtext(f"{UWS}ownerId")) for ref in etree.fromstring(r.content)]


def _check_lists(base: str, tokens: dict[str, str], admin_token: str, report: Report) -> None:
    total = 0
    for user, token in tokens.items():
        created = report.created[user]
        listed = _listed(base, token)
        listed_ids = [job_id for job_id, _ in listed]
        total += len(created)
        if len(set(created)) != len(created):
            report.problems.append(f"{user}: the server handed out a job id twice")
        if len(set(listed_ids)) != len(listed_ids):
            report.problems.append(f"{user}: a job is listed twice")
        lost = set(created) - set(listed_ids)
        extra = set(listed_ids) - set(created)
        if lost:
            report.problems.append(f"{user}: {len(lost)} created job(s) missing from the list")
        if extra:
            report.problems.append(f"{user}: {len(extra)} unknown job(s) in the list")
        foreign = [owner for _, owner in listed if owner != user]
        if foreign:
            report.problems.append(f"{user}: sees {len(foreign)} job(s) of other users")
    everything = _listed(base, admin_token)
    if len(everything) != total:
        report.problems.append(f"admin lists {len(everything)} jobs, clients created {total}")


def format_report(report: Report) -> str:
    lines = [
        f"{report.requests} requests in {report.seconds:.1f} s"
        f" = {report.requests / max(report.seconds, 1e-9):.0f} req/s",
        f"{'operation':<8} {'count':>7} {'median':>9} {'p95':>9} {'p99':>9} {'max':>9}",
    ]
    for op, _ in OPERATIONS:
        values = sorted(report.latencies.get(op, []))
        if not values:
            continue

        def q(f: float, v: list[float] = values) -> str:
            return f"{v[min(len(v) - 1, int(f * len(v)))] * 1000:7.1f}ms"

        lines.append(
            f"{op:<8} {len(values):>7} {statistics.median(values) * 1000:7.1f}ms"
            f" {q(0.95)} {q(0.99)} {values[-1] * 1000:7.1f}ms"
        )
    lines.append(
        "HTTP statuses: " + ", ".join(f"{c}: {n}" for c, n in sorted(report.statuses.items()))
    )
    lines.append(f"5xx answers: {report.server_errors}; 'database is locked': {report.locked}")
    lines.append(
        "client-side failures: "
        + (", ".join(f"{k}: {n}" for k, n in report.failures.items()) or "none")
    )
    created = sum(len(v) for v in report.created.values())
    lines.append(f"jobs created: {created} by {len(report.created)} users")
    return "\n".join(lines)


# -- the server ----------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _opus_min(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "opus_min", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--users", type=int, default=4)
    parser.add_argument("--threads", type=int, default=48, help="server threads")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="opus-load-") as tmp:
        folder = Path(tmp)
        port = _free_port()
        env = dict(
            os.environ,
            OPUS_MIN_DATABASE=str(folder / "db.sqlite"),
            OPUS_MIN_WORK_ROOT=str(folder / "jobs"),
            OPUS_MIN_SERVICES=str(ROOT / "services"),
            OPUS_MIN_HOST="127.0.0.1",
            OPUS_MIN_PORT=str(port),
            OPUS_MIN_THREADS=str(args.threads),
            OPUS_MIN_AUTH="token",
            OPUS_MIN_REAPER_INTERVAL="3600",
        )
        env.pop("OPUS_MIN_CONFIG", None)
        tokens = {
            f"user{i}": _opus_min(env, "users", "add", f"user{i}").stdout.strip()
            for i in range(args.users)
        }
        admin = _opus_min(env, "users", "add", "boss", "--role", "admin").stdout.strip()
        log_path = folder / "server.log"
        with open(log_path, "wb") as log:
            server = subprocess.Popen(
                [sys.executable, "-m", "opus_min", "serve"],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        base = f"http://127.0.0.1:{port}"
        try:
            ready = time.monotonic() + 30
            while True:
                try:
                    r = requests.get(
                        f"{base}/rest/echo", headers={"Authorization": f"Bearer {admin}"}, timeout=2
                    )
                    if r.status_code == 200:
                        break
                except requests.RequestException:
                    pass
                if time.monotonic() > ready or server.poll() is not None:
                    print(log_path.read_text()[-3000:], file=sys.stderr)
                    return 1
                time.sleep(0.2)
            print(
                f"opus-min serve (waitress, {args.threads} threads, auth=token) on {base};"
                f" {args.clients} clients, {args.users} users, {args.seconds:.0f} s"
            )
            report = run_load(base, tokens, admin, args.clients, args.seconds)
        finally:
            os.killpg(server.pid, signal.SIGTERM)
            try:
                server.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
                server.wait(5)
        log_text = log_path.read_text(errors="replace")
        report.locked += log_text.count("database is locked")
        if "Traceback" in log_text:
            report.problems.append("the server log has a traceback")
        print(format_report(report))
        ok = report.server_errors == 0 and report.locked == 0 and not report.problems
        for problem in report.problems:
            print("PROBLEM", problem)
        print("OK: no 5xx, no lock errors, no lost or duplicated job" if ok else "FAILED")
        return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
