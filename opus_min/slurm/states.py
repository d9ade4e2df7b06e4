"""Slurm job states → UWS phases, with the errorSummary each final state deserves. Pure.

Used for every way the controller learns a state from Slurm: the jobcomp hook's report, the
lookup made when a job says it was killed by a signal, and reconcile at start-up.
"""

from __future__ import annotations

import re
import signal
from dataclasses import dataclass

from ..uws.model import ErrorType, JobError, Phase

__all__ = ["SlurmState", "describe_signal", "map_state", "parse_exit_code"]

QUEUED_STATES = frozenset(
    {"PENDING", "CONFIGURING", "REQUEUED", "REQUEUE_FED", "REQUEUE_HOLD", "RESV_DEL_HOLD"}
)
"""Slurm holds the job but has not started it: UWS QUEUED."""

RUNNING_STATES = frozenset(
    {"RUNNING", "COMPLETING", "SUSPENDED", "STOPPED", "SIGNALING", "STAGE_OUT", "RESIZING"}
)
"""The job has started and not ended (a suspended job is still EXECUTING for UWS)."""

_STATE_RE = re.compile(r"[A-Z_]+")


@dataclass(frozen=True)
class SlurmState:
    """What Slurm says about one job."""

    state: str
    """Base state, e.g. ``CANCELLED`` (``CANCELLED by 0`` from sacct is cut to the word)."""
    exit_status: int | None = None
    exit_signal: int | None = None
    reason: str = ""


def parse_exit_code(text: str) -> tuple[int | None, int | None]:
    """``"143:0"`` (scontrol, sacct) → (143, 0); a bare ``"1"`` → (1, None); junk → (None, None)."""
    parts = text.strip().split(":")
    try:
        status = int(parts[0])
        sig = int(parts[1]) if len(parts) > 1 and parts[1] else None
    except ValueError:
        return None, None
    return status, sig


def describe_signal(number: int) -> str:
    try:
        return f"signal {signal.Signals(number).name} ({number})"
    except ValueError:
        return f"signal {number}"


def map_state(slurm: SlurmState, job_id: str = "") -> tuple[Phase, JobError | None]:
    """The UWS phase and error for a Slurm state; QUEUED/EXECUTING for jobs not yet ended."""
    match = _STATE_RE.match(slurm.state.strip().upper())
    state = match.group(0) if match else ""
    name = f"Slurm job {job_id}" if job_id else "the Slurm job"
    if state in QUEUED_STATES:
        return Phase.QUEUED, None
    if state in RUNNING_STATES:
        return Phase.EXECUTING, None
    if state == "COMPLETED":
        return Phase.COMPLETED, None
    if state == "CANCELLED":
        return Phase.ABORTED, JobError(
            f"{name} was cancelled in Slurm (scancel or an administrator)"
        )
    if state == "TIMEOUT":
        return Phase.ABORTED, JobError(
            f"{name} reached its Slurm time limit (TIMEOUT) and was stopped"
        )
    if state == "DEADLINE":
        return Phase.ABORTED, JobError(f"{name} reached its Slurm deadline and was stopped")
    if state == "OUT_OF_MEMORY":
        return Phase.ERROR, JobError(
            f"{name} ran out of memory (OUT_OF_MEMORY); ask for more memory"
            " (slurm_mem, where the service allows it)"
        )
    if state == "NODE_FAIL":
        return Phase.ERROR, JobError(
            f"the node running {name} failed (NODE_FAIL); run the job again", ErrorType.TRANSIENT
        )
    if state == "PREEMPTED":
        return Phase.ERROR, JobError(
            f"{name} was preempted by a higher-priority job (PREEMPTED); run it again",
            ErrorType.TRANSIENT,
        )
    if state == "BOOT_FAIL":
        return Phase.ERROR, JobError(
            f"the node for {name} failed to boot (BOOT_FAIL); run the job again",
            ErrorType.TRANSIENT,
        )
    if state == "FAILED":
        return Phase.ERROR, JobError(_failure(name, slurm))
    if state in ("REVOKED", "SPECIAL_EXIT"):
        return Phase.ERROR, JobError(f"{name} ended as {state}", ErrorType.TRANSIENT)
    return Phase.ERROR, JobError(
        f"{name} is in an unknown Slurm state {slurm.state.strip()[:40]!r}", ErrorType.TRANSIENT
    )


def _failure(name: str, slurm: SlurmState) -> str:
    if slurm.reason == "JobLaunchFailure":
        return f"Slurm could not launch {name} (JobLaunchFailure)"
    if slurm.exit_signal:
        return (
            f"{name} was killed by {describe_signal(slurm.exit_signal)} before it could report"
            " (out of memory, a node problem or an administrator)"
        )
    if slurm.exit_status is not None:
        return f"{name} failed with exit status {slurm.exit_status}"
    return f"{name} failed"
