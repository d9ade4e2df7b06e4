"""What provenance is built from: frozen records read from the store. Pure, stdlib only."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

__all__ = ["ActivityRecord", "EntityRecord", "GeneratedRecord", "ProvGraph", "UsedRecord"]


@dataclass(frozen=True)
class ActivityRecord:
    """One job as an Activity: a live job, or the tombstone a deleted job left."""

    job_id: str
    service: str
    owner: str
    phase: str
    creation_time: datetime
    start_time: datetime | None = None
    end_time: datetime | None = None
    run_id: str | None = None
    error: str | None = None
    parameters: tuple[tuple[str, str], ...] = ()
    """(name, value) of every declared, non-file parameter after defaults were applied."""
    deleted: datetime | None = None
    """When the job was deleted (its provenance stays, its files are gone)."""


@dataclass(frozen=True)
class UsedRecord:
    """A job's input file, identified by its content."""

    job_id: str
    role: str
    """The Used entity's name in the service description (also the UWS parameter name)."""
    sha256: str
    size: int
    content_type: str
    name: str
    """File name as given (upload name, or the last path segment of the URL)."""
    location: str | None
    """Where it was fetched from (None for an upload)."""
    time: datetime


@dataclass(frozen=True)
class GeneratedRecord:
    """A job's result file."""

    job_id: str
    role: str
    """The UWS result id."""
    sha256: str
    size: int
    content_type: str
    name: str
    time: datetime
    invalidated: datetime | None = None


@dataclass(frozen=True)
class EntityRecord:
    """One content hash: the entity every use and generation of the same bytes shares."""

    sha256: str
    size: int
    content_type: str
    name: str
    first_seen: datetime
    invalidated: datetime | None = None
    """Set when the last copy of these bytes held as a job result was deleted."""


@dataclass
class ProvGraph:
    """The part of the provenance graph a document shows."""

    activities: dict[str, ActivityRecord] = field(default_factory=dict)
    entities: dict[str, EntityRecord] = field(default_factory=dict)
    used: list[UsedRecord] = field(default_factory=list)
    generated: list[GeneratedRecord] = field(default_factory=list)
