"""JobStore: the only module that touches SQLite.

One connection per thread (SQLite connections are not shared across threads), WAL mode and a
busy timeout so readers never block the writer, ``BEGIN IMMEDIATE`` for every write so two
writers queue instead of failing, and phase changes as compare-and-set updates.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

from .model import ErrorType, Job, JobError, Parameter, Phase, Result

__all__ = ["JobStore", "ListFilter", "MIGRATIONS"]

MIGRATIONS = Migrations("opus_min")
"""Schema history; a new release appends a migration, never edits an applied one."""


@MIGRATIONS()
def m001_initial(db: Database) -> None:
    db.execute(
        """
        CREATE TABLE jobs (
            job_id TEXT PRIMARY KEY,
            service TEXT NOT NULL,
            owner TEXT NOT NULL DEFAULT '',
            run_id TEXT,
            phase TEXT NOT NULL,
            creation_time TEXT NOT NULL,
            start_time TEXT,
            end_time TEXT,
            execution_duration INTEGER NOT NULL,
            destruction TEXT,
            quote TEXT,
            error_type TEXT,
            error_message TEXT,
            error_detail TEXT,
            external_id TEXT
        )"""
    )
    # Job lists filter on (service, owner[, phase]) and sort by creation time: these keep
    # LAST/AFTER/PHASE queries index-only as the table grows.
    db.execute("CREATE INDEX jobs_list ON jobs (service, owner, creation_time)")
    db.execute("CREATE INDEX jobs_phase ON jobs (service, owner, phase, creation_time)")
    db.execute("CREATE INDEX jobs_active ON jobs (phase, creation_time)")
    db.execute("CREATE INDEX jobs_destruction ON jobs (destruction)")
    db.execute(
        """
        CREATE TABLE parameters (
            job_id TEXT NOT NULL REFERENCES jobs(job_id) ON DELETE CASCADE,
            position INTEGER NOT NULL,
            name TEXT NOT NULL,
            value TEXT NOT NULL,
            by_reference INTEGER NOT NULL DEFAULT 0,
            known INTEGER NOT NULL DEFAULT 1,
            file TEXT,
            PRIMARY KEY (job_id, name)
        )"""
    )
    db.execute(
        """
        CREATE TABLE results (
            job_id TEXT NOT NULL REFERENCES jobs(job_id) ON DELETE CASCADE,
            position INTEGER NOT NULL,
            result_id TEXT NOT NULL,
            path TEXT NOT NULL,
            mime_type TEXT NOT NULL,
            size INTEGER NOT NULL,
            sha256 TEXT NOT NULL,
            PRIMARY KEY (job_id, result_id)
        )"""
    )


_TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"
_JOB_COLUMNS = (
    "job_id, service, owner, run_id, phase, creation_time, start_time, end_time,"
    " execution_duration, destruction, quote, error_type, error_message, error_detail, external_id"
)


def to_db_time(value: datetime | None) -> str | None:
    """Fixed-width UTC text, so that string order is time order."""
    return None if value is None else value.strftime(_TIME_FORMAT)


def _from_db_time(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


@dataclass(frozen=True)
class ListFilter:
    """The UWS job-list filters: PHASE (union), AFTER (creationTime >), LAST (newest n)."""

    phases: tuple[Phase, ...] = ()
    after: datetime | None = None
    last: int | None = None


class JobStore:
    """Persistence of jobs, parameters and results in one SQLite file."""

    def __init__(self, path: Path, *, busy_timeout: float = 30.0) -> None:
        self.path = Path(path)
        self.busy_timeout = busy_timeout
        self._local = threading.local()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = self._connection()
        conn.execute("PRAGMA journal_mode=WAL")
        MIGRATIONS.apply(Database(conn, execute_plugins=False))

    # -- connections ---------------------------------------------------------------------

    def _connection(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            # Autocommit mode: transactions are opened explicitly with BEGIN IMMEDIATE.
            conn = sqlite3.connect(self.path, timeout=self.busy_timeout, isolation_level=None)
            conn.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout * 1000)}")
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute("PRAGMA foreign_keys = ON")
            self._local.conn = conn
        return conn

    def close(self) -> None:
        """Close this thread's connection."""
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    def _write(self) -> _Transaction:
        return _Transaction(self._connection())

    def ping(self) -> bool:
        """Whether the database answers a query (used by availability)."""
        try:
            self._connection().execute("SELECT 1 FROM jobs LIMIT 1").fetchall()
        except sqlite3.Error:
            return False
        return True

    # -- reading ---------------------------------------------------------------------------

    def get(self, job_id: str, *, service: str | None = None) -> Job | None:
        """The job with its parameters and results, or None."""
        conn = self._connection()
        sql = f"SELECT {_JOB_COLUMNS} FROM jobs WHERE job_id = ?"
        args: list[Any] = [job_id]
        if service is not None:
            sql += " AND service = ?"
            args.append(service)
        row = conn.execute(sql, args).fetchone()
        if row is None:
            return None
        params = tuple(
            Parameter(name, value, bool(byref), bool(known), file)
            for name, value, byref, known, file in conn.execute(
                "SELECT name, value, by_reference, known, file FROM parameters"
                " WHERE job_id = ? ORDER BY position",
                (job_id,),
            )
        )
        results = tuple(
            Result(*r)
            for r in conn.execute(
                "SELECT result_id, path, mime_type, size, sha256 FROM results"
                " WHERE job_id = ? ORDER BY position",
                (job_id,),
            )
        )
        return _job_from_row(row, params, results)

    def phase(self, job_id: str) -> Phase | None:
        row = (
            self._connection()
            .execute("SELECT phase FROM jobs WHERE job_id = ?", (job_id,))
            .fetchone()
        )
        return None if row is None else Phase(row[0])

    def list(self, service: str, owner: str, flt: ListFilter) -> list[Job]:
        """Jobs of one owner and service, newest first (without parameters and results)."""
        sql = f"SELECT {_JOB_COLUMNS} FROM jobs WHERE service = ? AND owner = ?"
        args: list[Any] = [service, owner]
        if flt.phases:
            sql += f" AND phase IN ({','.join('?' * len(flt.phases))})"
            args.extend(p.value for p in flt.phases)
        else:
            sql += " AND phase != 'ARCHIVED'"
        if flt.after is not None:
            sql += " AND creation_time > ?"
            args.append(to_db_time(flt.after))
        sql += " ORDER BY creation_time DESC, rowid DESC"
        if flt.last is not None:
            sql += " LIMIT ?"
            args.append(flt.last)
        rows = self._connection().execute(sql, args).fetchall()
        return [_job_from_row(row, (), ()) for row in rows]

    def in_phases(self, phases: Iterable[Phase]) -> list[Job]:
        """Every job in the given phases, oldest first (recovery, scheduling)."""
        phases = list(phases)
        rows = (
            self._connection()
            .execute(
                f"SELECT {_JOB_COLUMNS} FROM jobs WHERE phase IN ({','.join('?' * len(phases))})"
                " ORDER BY creation_time, rowid",
                [p.value for p in phases],
            )
            .fetchall()
        )
        return [_job_from_row(row, (), ()) for row in rows]

    def expired(self, now: datetime) -> list[Job]:
        """Jobs whose destruction time has passed and that are not archived yet."""
        rows = (
            self._connection()
            .execute(
                f"SELECT {_JOB_COLUMNS} FROM jobs WHERE destruction <= ? AND phase != 'ARCHIVED'",
                (to_db_time(now),),
            )
            .fetchall()
        )
        return [_job_from_row(row, (), ()) for row in rows]

    def recent_run_times(self, service: str, limit: int = 20) -> list[float]:
        """Run times in seconds of the service's most recent completed jobs."""
        rows = (
            self._connection()
            .execute(
                "SELECT start_time, end_time FROM jobs WHERE service = ? AND phase = 'COMPLETED'"
                " AND start_time IS NOT NULL AND end_time IS NOT NULL"
                " ORDER BY end_time DESC LIMIT ?",
                (service, limit),
            )
            .fetchall()
        )
        return [
            (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()
            for start, end in rows
        ]

    def count_ahead(self, service: str, creation_time: datetime) -> tuple[int, int]:
        """(QUEUED jobs created before this instant, EXECUTING jobs) across the server."""
        conn = self._connection()
        queued = conn.execute(
            "SELECT count(*) FROM jobs WHERE phase = 'QUEUED' AND creation_time < ?",
            (to_db_time(creation_time),),
        ).fetchone()[0]
        executing = conn.execute("SELECT count(*) FROM jobs WHERE phase = 'EXECUTING'").fetchone()[
            0
        ]
        return int(queued), int(executing)

    # -- writing ---------------------------------------------------------------------------

    def insert(self, job: Job) -> None:
        """Insert a new job with its parameters in one transaction."""
        with self._write() as conn:
            conn.execute(
                f"INSERT INTO jobs ({_JOB_COLUMNS}) VALUES ({','.join('?' * 15)})",
                _job_to_row(job),
            )
            _insert_parameters(conn, job.id, job.parameters)

    def transition(
        self,
        job_id: str,
        from_phases: Iterable[Phase],
        to_phase: Phase,
        *,
        results: Sequence[Result] | None = None,
        **fields: Any,
    ) -> bool:
        """Compare-and-set: move the job to ``to_phase`` only if it is in ``from_phases``.

        Extra keyword arguments set columns in the same update; ``results`` replace the job's
        results in the same transaction. Returns whether the change was made.
        """
        from_phases = list(from_phases)
        sets = ["phase = ?"] + [f"{name} = ?" for name in fields]
        args: list[Any] = [to_phase.value] + [_column_value(v) for v in fields.values()]
        args.append(job_id)
        args.extend(p.value for p in from_phases)
        with self._write() as conn:
            cursor = conn.execute(
                f"UPDATE jobs SET {', '.join(sets)} WHERE job_id = ?"
                f" AND phase IN ({','.join('?' * len(from_phases))})",
                args,
            )
            if cursor.rowcount != 1:
                return False
            if results is not None:
                conn.execute("DELETE FROM results WHERE job_id = ?", (job_id,))
                conn.executemany(
                    "INSERT INTO results (job_id, position, result_id, path, mime_type, size,"
                    " sha256) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    [
                        (job_id, i, r.id, r.path, r.mime_type, r.size, r.sha256)
                        for i, r in enumerate(results)
                    ],
                )
        return True

    def update(self, job_id: str, in_phases: Iterable[Phase], **fields: Any) -> bool:
        """Set columns only while the job is in one of ``in_phases`` (compare-and-set)."""
        in_phases = list(in_phases)
        sets = ", ".join(f"{name} = ?" for name in fields)
        args = [_column_value(v) for v in fields.values()] + [job_id]
        args.extend(p.value for p in in_phases)
        with self._write() as conn:
            cursor = conn.execute(
                f"UPDATE jobs SET {sets} WHERE job_id = ?"
                f" AND phase IN ({','.join('?' * len(in_phases))})",
                args,
            )
            return cursor.rowcount == 1

    def replace_parameters(
        self, job_id: str, parameters: Sequence[Parameter], run_id: str | None, set_run_id: bool
    ) -> bool:
        """Replace the parameter list (and maybe runId) while the job is PENDING."""
        with self._write() as conn:
            if set_run_id:
                cursor = conn.execute(
                    "UPDATE jobs SET run_id = ? WHERE job_id = ? AND phase = 'PENDING'",
                    (run_id, job_id),
                )
            else:
                cursor = conn.execute(
                    "UPDATE jobs SET phase = phase WHERE job_id = ? AND phase = 'PENDING'",
                    (job_id,),
                )
            if cursor.rowcount != 1:
                return False
            conn.execute("DELETE FROM parameters WHERE job_id = ?", (job_id,))
            _insert_parameters(conn, job_id, parameters)
        return True

    def delete(self, job_id: str) -> bool:
        """Forget the job and everything attached to it."""
        with self._write() as conn:
            return conn.execute("DELETE FROM jobs WHERE job_id = ?", (job_id,)).rowcount == 1


class _Transaction:
    """``BEGIN IMMEDIATE`` … ``COMMIT``, rolled back on any exception."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def __enter__(self) -> sqlite3.Connection:
        self.conn.execute("BEGIN IMMEDIATE")
        return self.conn

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is None:
            self.conn.execute("COMMIT")
        else:
            self.conn.execute("ROLLBACK")


def _insert_parameters(
    conn: sqlite3.Connection, job_id: str, parameters: Sequence[Parameter]
) -> None:
    conn.executemany(
        "INSERT INTO parameters (job_id, position, name, value, by_reference, known, file)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        [
            (job_id, i, p.name, p.value, int(p.by_reference), int(p.known), p.file)
            for i, p in enumerate(parameters)
        ],
    )


def _column_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return to_db_time(value)
    if isinstance(value, Phase | ErrorType):
        return value.value
    return value


def _job_to_row(job: Job) -> tuple[Any, ...]:
    error = job.error
    return (
        job.id,
        job.service,
        job.owner,
        job.run_id,
        job.phase.value,
        to_db_time(job.creation_time),
        to_db_time(job.start_time),
        to_db_time(job.end_time),
        job.execution_duration,
        to_db_time(job.destruction),
        to_db_time(job.quote),
        error.type.value if error else None,
        error.message if error else None,
        error.detail if error else None,
        job.external_id,
    )


def _job_from_row(
    row: Sequence[Any], params: tuple[Parameter, ...], results: tuple[Result, ...]
) -> Job:
    (
        job_id,
        service,
        owner,
        run_id,
        phase,
        created,
        started,
        ended,
        duration,
        destruction,
        quote,
        error_type,
        error_message,
        error_detail,
        external_id,
    ) = row
    error = None
    if error_message is not None:
        error = JobError(error_message, ErrorType(error_type or "fatal"), error_detail)
    creation = _from_db_time(created)
    assert creation is not None
    return Job(
        id=job_id,
        service=service,
        owner=owner,
        phase=Phase(phase),
        creation_time=creation,
        execution_duration=int(duration),
        destruction=_from_db_time(destruction),
        run_id=run_id,
        quote=_from_db_time(quote),
        start_time=_from_db_time(started),
        end_time=_from_db_time(ended),
        error=error,
        parameters=params,
        results=results,
        external_id=external_id,
    )
