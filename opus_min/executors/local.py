"""LocalExecutor: runs each job as a bash process group on this machine.

Each job gets its own session (process group), so ABORT and the executionDuration limit end
every process the script started: SIGTERM to the group, then SIGKILL after a grace period.
At most ``max_concurrent`` jobs run at once; the others stay QUEUED in arrival order.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import threading
import time
from collections import deque
from dataclasses import dataclass, field

from ..uws.model import ErrorType, Job, JobError, JobEvent, Phase
from . import WRAPPER, JobRun, Reporter, read_note, read_tail

__all__ = ["LocalExecutor"]

KILL_GRACE = 2.0
"""Seconds between SIGTERM and SIGKILL when a job is stopped."""


@dataclass
class _Running:
    run: JobRun
    process: subprocess.Popen[bytes]
    cancelled: bool = False
    shutdown: bool = False
    timed_out: bool = False
    done: threading.Event = field(default_factory=threading.Event)


class LocalExecutor:
    """Runs jobs with ``subprocess`` in their own process groups."""

    name = "local"

    def __init__(self, *, max_concurrent: int = 4) -> None:
        self.max_concurrent = max(1, max_concurrent)
        self._lock = threading.Lock()
        self._pending: deque[JobRun] = deque()
        self._running: dict[str, _Running] = {}
        self._report: Reporter | None = None
        self._stopping = False
        self._host = socket.gethostname()

    # The handle recorded for a job: which controller process runs it, and its process group.
    def _handle(self, pgid: int | None) -> str:
        return f"local:{self._host}:{os.getpid()}:{'' if pgid is None else pgid}"

    def start(self, report: Reporter) -> None:
        self._report = report

    def handle(self) -> str:
        """The handle recorded when a job is queued here: this controller process."""
        return self._handle(None)

    def submit(self, run: JobRun) -> None:
        with self._lock:
            self._pending.append(run)
        self._dispatch()

    def _dispatch(self) -> None:
        while True:
            with self._lock:
                if self._stopping or not self._pending or len(self._running) >= self.max_concurrent:
                    return
                run = self._pending.popleft()
                running = self._spawn(run)
                if running is None:
                    continue
                self._running[run.job_id] = running
            self._emit(
                JobEvent(run.job_id, Phase.EXECUTING, external_id=self._handle(running.process.pid))
            )
            threading.Thread(
                target=self._monitor, args=(running,), name=f"job-{run.job_id}", daemon=True
            ).start()

    def _spawn(self, run: JobRun) -> _Running | None:
        env = dict(run.environment)
        env.update(
            OPUS_META=str(run.meta_dir),
            OPUS_SCRIPT=str(run.script),
            OPUS_SERVICE=run.service,
            OPUS_JOB_DIR=str(run.job_dir),
        )
        try:
            with (
                open(run.meta_dir / "stdout.log", "wb") as out,
                open(run.meta_dir / "stderr.log", "wb") as err,
            ):
                process = subprocess.Popen(
                    ["/bin/bash", str(WRAPPER)],
                    cwd=run.job_dir,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=err,
                    start_new_session=True,
                    close_fds=True,
                )
        except OSError as exc:
            self._emit(
                JobEvent(run.job_id, Phase.ERROR, JobError(f"could not start the job: {exc}"))
            )
            return None
        return _Running(run, process)

    def _monitor(self, running: _Running) -> None:
        run, process = running.run, running.process
        # Popen.wait(timeout) polls (sleeps of up to 50 ms): with hundreds of jobs that is real
        # CPU. A blocking waitpid plus a timer thread that sleeps until the limit costs none.
        limit = None
        if run.execution_duration:
            limit = threading.Timer(run.execution_duration, self._time_out, args=(running,))
            limit.daemon = True
            limit.start()
        process.wait()
        if limit is not None:
            limit.cancel()
        # Whatever the script left running in its group goes too: no orphans.
        _signal_group(process.pid, signal.SIGKILL)
        with self._lock:
            self._running.pop(run.job_id, None)
        self._emit(self._final_event(running))
        running.done.set()
        self._dispatch()

    @staticmethod
    def _time_out(running: _Running) -> None:
        if running.process.poll() is None:
            running.timed_out = True
            _kill_group(running.process)

    def _final_event(self, running: _Running) -> JobEvent:
        run, code = running.run, running.process.returncode
        if running.shutdown:
            message = "the controller stopped while the job was running; run a new job"
            return JobEvent(run.job_id, Phase.ERROR, JobError(message, ErrorType.TRANSIENT))
        if running.cancelled:
            return JobEvent(run.job_id, Phase.ABORTED)
        if running.timed_out:
            message = (
                f"executionDuration of {run.execution_duration} s exceeded; the job was stopped"
            )
            return JobEvent(run.job_id, Phase.ABORTED, JobError(message, ErrorType.FATAL))
        if code == 0:
            return JobEvent(run.job_id, Phase.COMPLETED)
        note = read_note(run.meta_dir)
        if code < 0:
            message = f"the job was killed by signal {signal.Signals(-code).name}"
        else:
            message = note or f"the job script exited with status {code}"
        stderr_tail = read_tail(run.meta_dir / "stderr.log")
        return JobEvent(run.job_id, Phase.ERROR, JobError(message, ErrorType.FATAL, stderr_tail))

    def cancel(self, job: Job) -> None:
        with self._lock:
            self._pending = deque(r for r in self._pending if r.job_id != job.id)
            running = self._running.get(job.id)
            if running is not None:
                running.cancelled = True
        if running is not None:
            _kill_group(running.process)
            running.done.wait(KILL_GRACE + 5)
        elif job.external_id:
            self._kill_orphan(job)

    def orphaned(self, job: Job) -> bool:
        host, server_pid, _ = _parse_handle(job.external_id)
        if host is None:
            # Never handed to a process: only a stopped controller leaves that behind.
            return True
        if host != self._host:
            return False
        return server_pid == os.getpid() and job.id not in self._running or not _alive(server_pid)

    def _kill_orphan(self, job: Job) -> None:
        host, _, pgid = _parse_handle(job.external_id)
        if host == self._host and pgid:
            _signal_group(pgid, signal.SIGKILL)

    def kill_orphan(self, job: Job) -> None:
        """End whatever is left of a job whose controller died."""
        self._kill_orphan(job)

    def reachable(self) -> bool:
        return not self._stopping and os.access(WRAPPER, os.R_OK)

    def active(self) -> int:
        with self._lock:
            return len(self._running)

    def stop(self) -> None:
        with self._lock:
            self._stopping = True
            self._pending.clear()
            running = list(self._running.values())
        for item in running:
            item.shutdown = True
            _kill_group(item.process)
        for item in running:
            item.done.wait(KILL_GRACE + 5)

    def _emit(self, event: JobEvent) -> None:
        if self._report is not None:
            self._report(event)


def _parse_handle(handle: str | None) -> tuple[str | None, int, int | None]:
    if not handle or not handle.startswith("local:"):
        return None, 0, None
    _, host, server_pid, pgid = handle.split(":", 3)
    return host, int(server_pid), int(pgid) if pgid else None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _signal_group(pgid: int, sig: signal.Signals) -> bool:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the job's process group, then SIGKILL it if it has not ended."""
    if not _signal_group(process.pid, signal.SIGTERM):
        return
    deadline = time.monotonic() + KILL_GRACE
    while time.monotonic() < deadline:
        if process.poll() is not None:
            break
        time.sleep(0.05)
    _signal_group(process.pid, signal.SIGKILL)
