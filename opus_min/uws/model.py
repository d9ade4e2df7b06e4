"""The UWS job model: phases, the transition table, and frozen records. Pure, stdlib only."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

__all__ = [
    "ACTIVE_PHASES",
    "FINAL_PHASES",
    "WAITABLE_PHASES",
    "ErrorType",
    "Job",
    "JobError",
    "JobEvent",
    "Parameter",
    "Phase",
    "Result",
    "format_instant",
    "parse_instant",
    "utcnow",
]


class Phase(StrEnum):
    """The ten UWS 1.1 phases."""

    PENDING = "PENDING"
    QUEUED = "QUEUED"
    EXECUTING = "EXECUTING"
    COMPLETED = "COMPLETED"
    ERROR = "ERROR"
    ABORTED = "ABORTED"
    UNKNOWN = "UNKNOWN"
    HELD = "HELD"
    SUSPENDED = "SUSPENDED"
    ARCHIVED = "ARCHIVED"


ACTIVE_PHASES = frozenset(
    {Phase.PENDING, Phase.QUEUED, Phase.EXECUTING, Phase.HELD, Phase.SUSPENDED}
)
"""Phases from which a job can still reach a final phase (ABORT applies to these)."""

WAITABLE_PHASES = frozenset({Phase.QUEUED, Phase.EXECUTING})
"""Phases in which ``WAIT`` blocks (PENDING does not: pyvo raises on it, and nothing moves it)."""

FINAL_PHASES = frozenset({Phase.COMPLETED, Phase.ERROR, Phase.ABORTED, Phase.ARCHIVED})
"""Phases a job never leaves (except to ARCHIVED, by the reaper)."""


class ErrorType(StrEnum):
    """``errorSummary/@type``."""

    FATAL = "fatal"
    TRANSIENT = "transient"


@dataclass(frozen=True)
class JobError:
    """Why a job ended in ERROR (or why the system aborted it)."""

    message: str
    type: ErrorType = ErrorType.FATAL
    detail: str | None = None
    """Longer text served at ``/error``; ``hasDetail`` is true when present."""


@dataclass(frozen=True)
class Parameter:
    """A job parameter as stored and shown in ``uws:parameters``."""

    name: str
    value: str
    by_reference: bool = False
    known: bool = True
    """False for names the service does not declare: recorded, echoed, never given to the script."""
    file: str | None = None
    """For an uploaded file: its name inside the job folder."""


@dataclass(frozen=True)
class Result:
    """A result file of a job."""

    id: str
    path: str
    """Path relative to the job folder."""
    mime_type: str
    size: int
    sha256: str


@dataclass(frozen=True)
class Job:
    """A job as read from the store."""

    id: str
    service: str
    owner: str
    """Empty for anonymous jobs (``ownerId`` is then nil)."""
    phase: Phase
    creation_time: datetime
    execution_duration: int
    destruction: datetime | None = None
    run_id: str | None = None
    quote: datetime | None = None
    start_time: datetime | None = None
    end_time: datetime | None = None
    error: JobError | None = None
    parameters: tuple[Parameter, ...] = ()
    results: tuple[Result, ...] = ()
    external_id: str | None = None
    """The executor's handle (process group id, Slurm job id)."""

    def with_quote(self, quote: datetime | None) -> Job:
        """This job with another quote (a shallow copy: ``dataclasses.replace`` re-runs
        ``__init__`` and costs a noticeable share of a job GET)."""
        copy = object.__new__(Job)
        copy.__dict__.update(self.__dict__, quote=quote)
        return copy

    def parameter(self, name: str) -> Parameter | None:
        folded = name.casefold()
        return next((p for p in self.parameters if p.name.casefold() == folded), None)

    def result(self, result_id: str) -> Result | None:
        return next((r for r in self.results if r.id == result_id), None)


@dataclass(frozen=True)
class JobEvent:
    """A state report from an executor (or, later, a signed job callback)."""

    job_id: str
    phase: Phase
    error: JobError | None = None
    external_id: str | None = None


def utcnow() -> datetime:
    """Now in UTC, to the millisecond: the precision of every instant the server shows, so
    that ``AFTER=<a creationTime we showed>`` excludes that job."""
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def format_instant(value: datetime) -> str:
    """ISO 8601 in UTC with milliseconds and ``Z``: the only form pyvo parses reliably."""
    if value.tzinfo is not UTC:
        value = value.astimezone(UTC)
    # isoformat is done in C (strftime was a tenth of a job document's rendering time); in
    # UTC it ends with "+00:00".
    return value.isoformat(timespec="milliseconds")[:-6] + "Z"


def parse_instant(text: str) -> datetime:
    """Parse an ISO 8601 instant; a zone-less value is UTC (uws-client sends those).

    Raises
    ------
    ValueError
        Raised when the text is not an ISO 8601 date or date-time.
    """
    text = text.strip()
    if not text or len(text) > 40:
        raise ValueError(text)
    candidate = text[:-1] + "+00:00" if text[-1:] in ("Z", "z") else text
    value = datetime.fromisoformat(candidate)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC)
