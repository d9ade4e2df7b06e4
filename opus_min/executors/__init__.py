"""Executors run job scripts and report their state as :class:`~opus_min.uws.model.JobEvent`.

Only executors spawn processes. The service hands an executor a :class:`JobRun` when a job is
queued; the executor reports EXECUTING and then one final event (COMPLETED, ERROR or ABORTED)
through the ``report`` callback, the same path the Slurm job callbacks use.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from ..uws.model import Job, JobEvent

__all__ = ["Executor", "JobRun", "Reporter", "WRAPPER", "read_note", "read_tail"]

WRAPPER = Path(__file__).with_name("job_wrapper.sh")
"""The static bash wrapper that runs a service script; values reach it only by environment."""

Reporter = Callable[[JobEvent], None]


@dataclass(frozen=True)
class JobRun:
    """Everything an executor needs to run one job."""

    job_id: str
    service: str
    job_dir: Path
    """The script's working directory (uploads in, results out)."""
    meta_dir: Path
    """Where the wrapper writes stdout, stderr and its error note."""
    script: Path
    environment: Mapping[str, str]
    execution_duration: int
    """Seconds; 0 = unlimited."""


class Executor(Protocol):
    """What the UWS service needs from an execution back end."""

    name: str

    def start(self, report: Reporter) -> None:
        """Begin accepting work; ``report`` receives every state change."""

    def handle(self) -> str | None:
        """The ``external_id`` recorded when a job is queued (who holds it)."""

    def submit(self, run: JobRun) -> None:
        """Queue the job; EXECUTING and a final event follow through ``report``."""

    def cancel(self, job: Job) -> None:
        """Stop the job (ABORT or DELETE); the service has already recorded the new phase."""

    def orphaned(self, job: Job) -> bool:
        """Whether an active job was left behind by a controller that is gone."""

    def reachable(self) -> bool:
        """Whether the back end can take work now (availability)."""

    def stop(self) -> None:
        """Stop accepting work; running jobs are ended."""


def read_note(meta_dir: Path) -> str:
    """The wrapper's error note (``Error in S running command: ...``), or empty."""
    with contextlib.suppress(OSError):
        return (meta_dir / "error").read_text(errors="replace").strip()[:2000]
    return ""


def read_tail(path: os.PathLike[str], limit: int = 4000) -> str | None:
    """The last ``limit`` bytes of a log as text, or None when empty or unreadable."""
    try:
        with open(path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - limit))
            text = handle.read().decode(errors="replace").strip()
    except OSError:
        return None
    return text or None
