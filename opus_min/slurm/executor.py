"""SlurmExecutor: one ``sbatch`` per job on this submit host; the job reports back by signed
callbacks, Slurm's hook reports what the job cannot, and reconcile asks Slurm once at start.

Files of a job (``<work_root>/<job id>/.opus/``, on a file system the nodes share):
``batch.sh`` (rendered batch script), ``runner.sh`` and ``wrapper.sh`` (static copies),
``script.sh`` (the service script), ``environment`` (NUL-separated ``NAME=value``, 0600),
``callback`` (URL, duration and the job's tokens, 0600), ``stdout.log`` and ``stderr.log``
(sbatch ``--output``/``--error``), and the runner's ``runner.log``, ``final``, ``reported``,
``timeout``.

Asking Slurm for state happens in one place, :meth:`SlurmExecutor.query`, used by
:meth:`~SlurmExecutor.reconcile` (start-up) and by the follow-up of a job that reported it was
killed by a signal (Slurm knows whether that was scancel, the time limit or a preemption).
"""

from __future__ import annotations

import logging
import os
import queue
import re
import shutil
import subprocess
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePath

from ..config import Config
from ..executors import WRAPPER, JobRun, Reporter, read_note, read_tail
from ..uws.errors import Forbidden, UsageError
from ..uws.model import FINAL_PHASES, ErrorType, Job, JobError, JobEvent, Phase
from .batch import BatchSettings, job_overrides, render_batch_script, sbatch_options
from .signing import EVENTS, CallbackKey
from .states import SlurmState, describe_signal, map_state, parse_exit_code

__all__ = ["CallbackReport", "SlurmExecutor", "SlurmUnavailable"]

log = logging.getLogger("opus_min")

RUNNER = Path(__file__).with_name("runner.sh")
"""The static runner each batch script executes (copied into the job's ``.opus/``)."""

HANDLE = "slurm:"
"""``external_id`` prefix; ``slurm:`` alone means "handed to the submitter, no Slurm id yet"."""

COMMAND_TIMEOUT = 60.0
"""Seconds any Slurm command may take before it counts as failed."""

SETTLE_SECONDS = 20.0
"""How long the follow-up of a signalled job waits for Slurm to finish it (KillWait + margin)."""

SLURM_REPORTED_STATES = frozenset(
    {"CANCELLED", "TIMEOUT", "DEADLINE", "OUT_OF_MEMORY", "NODE_FAIL", "PREEMPTED", "BOOT_FAIL"}
)
"""Ends only Slurm can explain; for the others the job's own record is more precise."""

_ID = re.compile(r"[0-9]{1,12}")
_FIELD = re.compile(r"\b(JobState|Reason|ExitCode)=(\S*)")


class SlurmUnavailable(RuntimeError):
    """A Slurm command could not run or slurmctld did not answer."""


@dataclass(frozen=True)
class CallbackReport:
    """A verified callback: the event to apply, and whether Slurm must settle it first."""

    event: JobEvent
    settle: bool = False
    """The job was killed by a signal: the true end (scancel, time limit, preemption) is asked
    of Slurm once the job has finished; ``event`` is the fallback."""


class SlurmExecutor:
    """Submits jobs with sbatch and turns callbacks and Slurm states into job events."""

    name = "slurm"

    def __init__(
        self,
        *,
        settings: BatchSettings,
        key: CallbackKey,
        callback_url: str,
        work_root: Path,
        node_work_root: PurePath | None = None,
        bin_dir: str = "",
    ) -> None:
        self.settings = settings
        self.key = key
        self.callback_url = callback_url.rstrip("/")
        self.work_root = Path(work_root).resolve()
        self.node_work_root = PurePath(node_work_root) if node_work_root else self.work_root
        self.bin_dir = bin_dir
        self._report: Reporter | None = None
        self._queue: queue.Queue[tuple[str, Path] | None] = queue.Queue()
        self._lock = threading.Lock()
        self._ids: dict[str, str] = {}
        self._cancelled: set[str] = set()
        self._worker: threading.Thread | None = None
        self._stopping = False

    @classmethod
    def from_config(cls, config: Config) -> SlurmExecutor:
        """The executor described by the ``slurm_*`` and ``callback_key_file`` settings.

        Raises
        ------
        OSError
            Raised when the callback key can be neither read nor created.
        """
        key_file = Path(config.callback_key_file or "callback.key").expanduser()
        if not key_file.is_absolute():
            key_file = Path(config.database).parent / key_file
        url = config.slurm_callback_url or config.base_url
        if not url:
            host = "127.0.0.1" if config.host in ("", "0.0.0.0", "::") else config.host
            host = f"[{host}]" if ":" in host else host
            url = f"http://{host}:{config.port}"
        return cls(
            settings=BatchSettings(
                partition=config.slurm_partition,
                nodes=config.slurm_nodes,
                ntasks=config.slurm_ntasks,
                mem=config.slurm_mem,
                watchdog=config.slurm_watchdog,
            ),
            key=CallbackKey.load(key_file),
            callback_url=url,
            work_root=config.work_root,
            node_work_root=PurePath(config.slurm_work_root) if config.slurm_work_root else None,
            bin_dir=config.slurm_bin,
        )

    # -- life cycle ------------------------------------------------------------------------

    def start(self, report: Reporter) -> None:
        self._report = report
        if self._worker is None:
            self._worker = threading.Thread(target=self._submit_loop, name="sbatch", daemon=True)
            self._worker.start()

    def stop(self) -> None:
        """Stop submitting. Jobs already in Slurm keep running: the next start reconciles them."""
        self._stopping = True
        self._queue.put(None)
        if self._worker is not None:
            self._worker.join(COMMAND_TIMEOUT + 5)
            self._worker = None

    def handle(self) -> str:
        return HANDLE

    def reachable(self) -> bool:
        return not self._stopping and shutil.which(self._command("sbatch")) is not None

    def orphaned(self, job: Job) -> bool:
        """Only a job that never reached Slurm is lost with its controller."""
        return self.slurm_id(job) is None

    # -- submission ------------------------------------------------------------------------

    def submit(self, run: JobRun) -> None:
        """Write the job's files and batch script, then queue the sbatch call."""
        try:
            batch = self._prepare(run)
        except (OSError, ValueError) as exc:
            self._emit(
                JobEvent(run.job_id, Phase.ERROR, JobError(f"cannot submit to Slurm: {exc}"))
            )
            return
        self._queue.put((run.job_id, batch))

    def _prepare(self, run: JobRun) -> Path:
        meta = run.meta_dir
        node_dir, node_meta = self._node_path(run.job_dir), self._node_path(meta)
        overrides = job_overrides(run.environment)
        environment = {
            name: value for name, value in run.environment.items() if not name.startswith("slurm_")
        }
        environment.update(
            HOME=str(node_dir),
            TMPDIR=str(node_meta / "tmp"),
            OPUS_META=str(node_meta),
            OPUS_SCRIPT=str(node_meta / run.script.name),
            OPUS_SERVICE=run.service,
            OPUS_JOB_DIR=str(node_dir),
        )
        entries = []
        for name, value in environment.items():
            if "\x00" in name or "\x00" in value or "=" in name:
                raise ValueError(f"{name[:40]!r}: not representable in an environment")
            entries.append(f"{name}={value}".encode() + b"\x00")
        _write_private(meta / "environment", b"".join(entries))
        lines = [f"url={self.callback_url}/callback/{run.job_id}", f"duration={_duration(run)}"]
        lines += [f"{event}={self.key.sign(run.job_id, event)}" for event in EVENTS]
        _write_private(meta / "callback", ("\n".join(lines) + "\n").encode())
        shutil.copyfile(RUNNER, meta / "runner.sh")
        shutil.copyfile(WRAPPER, meta / "wrapper.sh")
        options = sbatch_options(
            job_id=run.job_id,
            job_dir=node_dir,
            meta_dir=node_meta,
            duration=_duration(run),
            settings=self.settings,
            overrides=overrides,
        )
        script = render_batch_script(
            job_id=run.job_id, options=options, runner=node_meta / "runner.sh", meta_dir=node_meta
        )
        batch = meta / "batch.sh"
        batch.write_text(script, encoding="utf-8")
        return batch

    def _submit_loop(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            job_id, batch = item
            with self._lock:
                if job_id in self._cancelled:
                    self._cancelled.discard(job_id)
                    continue
            try:
                self._sbatch(job_id, batch)
            except Exception:  # the submitter must survive anything
                log.exception("job %s: submission failed", job_id)

    def _sbatch(self, job_id: str, batch: Path) -> None:
        try:
            result = self._run(["sbatch", "--parsable", str(batch)], cwd=batch.parent.parent)
        except SlurmUnavailable as exc:
            self._emit(JobEvent(job_id, Phase.ERROR, JobError(f"sbatch failed: {exc}")))
            return
        slurm_id = result.stdout.strip().split(";", 1)[0]
        if result.returncode != 0 or not _ID.fullmatch(slurm_id):
            message = (
                _last_lines(result.stderr or result.stdout) or f"exit status {result.returncode}"
            )
            self._emit(JobEvent(job_id, Phase.ERROR, JobError(f"sbatch failed: {message}")))
            return
        with self._lock:
            self._ids[job_id] = slurm_id
            cancelled = job_id in self._cancelled
            self._cancelled.discard(job_id)
        log.info("job %s: Slurm job %s", job_id, slurm_id)
        self._emit(JobEvent(job_id, Phase.QUEUED, external_id=HANDLE + slurm_id))
        if cancelled:
            self._scancel(slurm_id)

    # -- cancellation ----------------------------------------------------------------------

    def cancel(self, job: Job) -> None:
        """scancel the job; one still waiting for sbatch is dropped (or cancelled right after)."""
        slurm_id = self.slurm_id(job)
        if slurm_id is None:
            with self._lock:
                self._cancelled.add(job.id)
            return
        self._scancel(slurm_id)

    def _scancel(self, slurm_id: str) -> None:
        try:
            result = self._run(["scancel", slurm_id])
        except SlurmUnavailable as exc:
            log.warning("scancel %s: %s", slurm_id, exc)
            return
        if result.returncode != 0:
            log.warning("scancel %s: %s", slurm_id, _last_lines(result.stderr))

    def slurm_id(self, job: Job) -> str | None:
        with self._lock:
            known = self._ids.get(job.id)
        if known:
            return known
        handle = job.external_id or ""
        if handle.startswith(HANDLE) and _ID.fullmatch(handle[len(HANDLE) :]):
            return handle[len(HANDLE) :]
        return None

    # -- callbacks -------------------------------------------------------------------------

    def receive(self, job_id: str, form: Mapping[str, str]) -> CallbackReport:
        """Check a callback's signature and turn it into the event it reports.

        Raises
        ------
        UsageError
            Raised when ``event`` or ``signature`` is missing, or a hook reports no final state.
        Forbidden
            Raised when the signature does not fit this job and event (forged, or another
            event's token).
        """
        event = form.get("event", "").strip().lower()
        token = form.get("signature", "")
        if not event or not token:
            raise UsageError("a callback needs event and signature")
        if not self.key.verify(job_id, event, token):
            raise Forbidden(f"callback for job {job_id}: signature refused")
        slurm_id = form.get("slurm_job_id", "").strip()
        slurm_id = slurm_id if _ID.fullmatch(slurm_id) else ""
        external = HANDLE + slurm_id if slurm_id else None
        if slurm_id:
            with self._lock:
                self._ids.setdefault(job_id, slurm_id)
        if event == "slurm":
            status, sig = parse_exit_code(form.get("exit_code", ""))
            state = SlurmState(form.get("slurm_state", "").strip().upper()[:40], status, sig)
            phase, error = map_state(state, slurm_id)
            if phase not in FINAL_PHASES:
                raise UsageError("the Slurm hook reports final states only")
            return CallbackReport(self._slurm_event(job_id, state, slurm_id, external))
        sig = re.sub(r"[^A-Z0-9]", "", form.get("signal", "").upper())[:10]
        status = form.get("status", "").strip()
        report = self._job_event(job_id, event, status, sig, external)
        return CallbackReport(report, settle=bool(sig and slurm_id))

    def _job_event(
        self, job_id: str, event: str, status: str, sig: str, external: str | None
    ) -> JobEvent:
        """The event for what the job's runner reported (by callback or in ``.opus/final``)."""
        meta = self.work_root / job_id / ".opus"
        if event == "executing":
            return JobEvent(job_id, Phase.EXECUTING, external_id=external)
        if event == "completed":
            return JobEvent(job_id, Phase.COMPLETED, external_id=external)
        if event == "aborted":
            try:
                seconds = int((meta / "timeout").read_text().strip())
            except (OSError, ValueError):
                seconds = 0
            limit = f"of {seconds} s " if seconds else ""
            message = f"executionDuration {limit}exceeded; the job was stopped"
            return JobEvent(job_id, Phase.ABORTED, JobError(message), external)
        tail = read_tail(meta / "stderr.log")
        if sig:
            message = f"the job was stopped by signal {sig} (from Slurm or an administrator)"
            return JobEvent(job_id, Phase.ERROR, JobError(message, ErrorType.FATAL, tail), external)
        message = read_note(meta)
        if not message:
            code = int(status) if status.isdigit() else None
            if code is not None and code > 128:
                message = f"the job script was killed by {describe_signal(code - 128)}"
            else:
                message = f"the job script exited with status {status or 'unknown'}"
        return JobEvent(job_id, Phase.ERROR, JobError(message, ErrorType.FATAL, tail), external)

    def _slurm_event(
        self, job_id: str, state: SlurmState, slurm_id: str, external: str | None
    ) -> JobEvent:
        phase, error = map_state(state, slurm_id)
        if error is not None and phase is Phase.ERROR:
            tail = read_tail(self.work_root / job_id / ".opus" / "stderr.log")
            error = JobError(error.message, error.type, tail)
        return JobEvent(job_id, phase, error, external)

    def settle(self, report: CallbackReport) -> None:
        """Follow up a job killed by a signal: once Slurm has finished it, report its true end
        (scancel, TIMEOUT, PREEMPTED...), or the job's own report if Slurm cannot tell."""
        threading.Thread(
            target=self._settle, args=(report.event,), name="slurm-settle", daemon=True
        ).start()

    def _settle(self, fallback: JobEvent) -> None:
        slurm_id = (fallback.external_id or "")[len(HANDLE) :]
        event = fallback
        try:
            state = self.query(slurm_id, wait=SETTLE_SECONDS)
        except SlurmUnavailable as exc:
            log.warning("job %s: Slurm job %s: %s", fallback.job_id, slurm_id, exc)
            state = None
        if state is not None:
            phase, _ = map_state(state, slurm_id)
            if phase in FINAL_PHASES and state.state in SLURM_REPORTED_STATES:
                event = self._slurm_event(fallback.job_id, state, slurm_id, fallback.external_id)
        self._emit(event)

    # -- asking Slurm ----------------------------------------------------------------------

    def query(self, slurm_id: str, *, wait: float = 10.0) -> SlurmState | None:
        """What Slurm says about a job (``scontrol show job``, else ``sacct``); None when it
        no longer knows the job. A COMPLETING job is asked again until it has ended (at most
        ``wait`` seconds), since only then does Slurm show how it ended.

        Raises
        ------
        SlurmUnavailable
            Raised when the commands cannot run or slurmctld does not answer.
        """
        deadline = time.monotonic() + wait
        while True:
            state = self._scontrol(slurm_id)
            if state is None:
                return self._sacct(slurm_id)
            if state.state != "COMPLETING" or time.monotonic() > deadline:
                return state
            time.sleep(0.25)

    def _scontrol(self, slurm_id: str) -> SlurmState | None:
        result = self._run(["scontrol", "show", "job", "-o", slurm_id])
        if result.returncode != 0:
            if "invalid job id" in result.stderr.lower():
                return None
            raise SlurmUnavailable(_last_lines(result.stderr) or "scontrol failed")
        fields = dict(_FIELD.findall(result.stdout))
        if "JobState" not in fields:
            return None
        status, sig = parse_exit_code(fields.get("ExitCode", ""))
        return SlurmState(fields["JobState"], status, sig, fields.get("Reason", ""))

    def _sacct(self, slurm_id: str) -> SlurmState | None:
        """Accounting, when the cluster has it (slurmdbd); otherwise None."""
        try:
            result = self._run(
                ["sacct", "-X", "-n", "-P", "-j", slurm_id, "--format=JobID,State,ExitCode"]
            )
        except SlurmUnavailable:
            return None
        for line in result.stdout.splitlines():
            parts = line.split("|")
            if result.returncode == 0 and len(parts) == 3 and parts[0] == slurm_id:
                status, sig = parse_exit_code(parts[2])
                return SlurmState(parts[1].split(" ", 1)[0], status, sig)
        return None

    def _find_by_name(self, job_id: str) -> str | None:
        """The Slurm id of a job whose sbatch answer was lost with the controller."""
        result = self._run(["squeue", "-h", "-t", "all", f"--name=opus-{job_id}", "-o", "%i"])
        if result.returncode != 0:
            raise SlurmUnavailable(_last_lines(result.stderr) or "squeue failed")
        ids = [line.strip() for line in result.stdout.splitlines() if _ID.fullmatch(line.strip())]
        return ids[-1] if ids else None

    def reconcile(self, job: Job) -> JobEvent | None:
        """The true state of an active job, asked of Slurm once.

        Returns an EXECUTING or QUEUED event for a job still in Slurm, a final event for one
        that ended (the job's own record in ``.opus/final`` where Slurm cannot say more), and
        None for a job that never reached Slurm.

        Raises
        ------
        SlurmUnavailable
            Raised when Slurm cannot be asked; the job is then left as it is.
        """
        slurm_id = self.slurm_id(job) or self._find_by_name(job.id)
        if slurm_id is None:
            return None
        external = HANDLE + slurm_id
        with self._lock:
            self._ids[job.id] = slurm_id
        state = self.query(slurm_id)
        recorded = self._recorded(job.id, external)
        if state is None:
            if recorded is not None:
                return recorded
            message = (
                f"Slurm no longer knows job {slurm_id} and the job left no record of its end;"
                " run a new job"
            )
            return JobEvent(job.id, Phase.ERROR, JobError(message, ErrorType.TRANSIENT), external)
        phase, _ = map_state(state, slurm_id)
        if phase in (Phase.QUEUED, Phase.EXECUTING):
            return JobEvent(job.id, phase, external_id=external)
        if recorded is not None and state.state not in SLURM_REPORTED_STATES:
            return recorded
        return self._slurm_event(job.id, state, slurm_id, external)

    def _recorded(self, job_id: str, external: str) -> JobEvent | None:
        """The end the runner wrote to ``.opus/final`` (a signal end needs Slurm's word)."""
        try:
            text = (self.work_root / job_id / ".opus" / "final").read_text()
        except OSError:
            return None
        fields = dict(line.split("=", 1) for line in text.splitlines() if "=" in line)
        event = fields.get("event", "")
        if event not in ("completed", "error", "aborted"):
            return None
        return self._job_event(
            job_id, event, fields.get("status", ""), fields.get("signal", ""), external
        )

    # -- helpers ---------------------------------------------------------------------------

    def _command(self, name: str) -> str:
        return os.path.join(self.bin_dir, name) if self.bin_dir else name

    def _run(self, argv: list[str], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
        try:
            return subprocess.run(
                [self._command(argv[0]), *argv[1:]],
                cwd=cwd,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=COMMAND_TIMEOUT,
                check=False,
            )
        except FileNotFoundError:
            raise SlurmUnavailable(
                f"{argv[0]} not found (is the Slurm client installed?)"
            ) from None
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise SlurmUnavailable(f"{argv[0]}: {exc}") from None

    def _node_path(self, path: Path) -> PurePath:
        """The path as the nodes see it (``slurm_work_root``), for a path under work_root."""
        return self.node_work_root / Path(path).resolve().relative_to(self.work_root)

    def _emit(self, event: JobEvent) -> None:
        if self._report is not None:
            self._report(event)


def _duration(run: JobRun) -> int:
    return max(0, int(run.execution_duration))


def _write_private(path: Path, data: bytes) -> None:
    """Write a file only its owner can read (tokens, parameter values)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.chmod(path, 0o600)


def _last_lines(text: str, count: int = 3) -> str:
    return " ".join(line.strip() for line in text.strip().splitlines()[-count:])[:1000]
