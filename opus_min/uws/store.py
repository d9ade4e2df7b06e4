"""JobStore: the only module that touches SQLite.

One connection per thread (SQLite connections are not shared across threads), WAL mode and a
busy timeout so readers never block the writer, ``BEGIN IMMEDIATE`` for every write so two
writers queue instead of failing, and phase changes as compare-and-set updates.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

from ..provsap.records import ActivityRecord, EntityRecord, GeneratedRecord, UsedRecord
from .model import ACTIVE_PHASES, ErrorType, Job, JobError, Parameter, Phase, Result

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


@MIGRATIONS()
def m002_users(db: Database) -> None:
    """Users (roles, active-job limit) and the SHA-256 digests of their tokens."""
    db.execute(
        """
        CREATE TABLE users (
            name TEXT PRIMARY KEY,
            roles TEXT NOT NULL DEFAULT '',
            max_active_jobs INTEGER,
            created TEXT NOT NULL,
            disabled INTEGER NOT NULL DEFAULT 0
        )"""
    )
    db.execute(
        """
        CREATE TABLE tokens (
            token_id TEXT PRIMARY KEY,
            user TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
            digest TEXT NOT NULL UNIQUE,
            created TEXT NOT NULL,
            revoked TEXT
        )"""
    )
    db.execute("CREATE INDEX tokens_user ON tokens (user)")
    # The per-user active-job limit counts a user's jobs across services at every creation.
    db.execute("CREATE INDEX jobs_owner_phase ON jobs (owner, phase)")


@MIGRATIONS()
def m003_provenance(db: Database) -> None:
    """Provenance: file entities by content hash, what each job used and generated, and the
    activity records deleted jobs leave. No foreign keys to ``jobs``: provenance outlives a
    deleted job, so chains through its results stay whole."""
    db.execute(
        """
        CREATE TABLE prov_entities (
            sha256 TEXT PRIMARY KEY,
            size INTEGER NOT NULL,
            content_type TEXT NOT NULL,
            name TEXT NOT NULL,
            first_seen TEXT NOT NULL,
            invalidated TEXT
        )"""
    )
    db.execute(
        """
        CREATE TABLE prov_used (
            job_id TEXT NOT NULL,
            role TEXT NOT NULL,
            sha256 TEXT NOT NULL,
            size INTEGER NOT NULL,
            content_type TEXT NOT NULL,
            name TEXT NOT NULL,
            location TEXT,
            time TEXT NOT NULL,
            PRIMARY KEY (job_id, role)
        )"""
    )
    db.execute(
        """
        CREATE TABLE prov_generated (
            job_id TEXT NOT NULL,
            role TEXT NOT NULL,
            sha256 TEXT NOT NULL,
            size INTEGER NOT NULL,
            content_type TEXT NOT NULL,
            name TEXT NOT NULL,
            time TEXT NOT NULL,
            invalidated TEXT,
            PRIMARY KEY (job_id, role)
        )"""
    )
    # ProvSAP walks from a file to the jobs that used or generated it: O(degree) lookups.
    db.execute("CREATE INDEX prov_used_entity ON prov_used (sha256)")
    db.execute("CREATE INDEX prov_generated_entity ON prov_generated (sha256)")
    db.execute(
        """
        CREATE TABLE prov_jobs (
            job_id TEXT PRIMARY KEY,
            service TEXT NOT NULL,
            owner TEXT NOT NULL,
            run_id TEXT,
            phase TEXT NOT NULL,
            creation_time TEXT NOT NULL,
            start_time TEXT,
            end_time TEXT,
            error_message TEXT,
            parameters TEXT NOT NULL,
            deleted TEXT NOT NULL
        )"""
    )
    db.execute("CREATE INDEX prov_jobs_owner ON prov_jobs (owner)")


@MIGRATIONS()
def m004_several_inputs_per_role(db: Database) -> None:
    # A multi-valued Used entity (multiplicity 1..*) is one role with several files: the key
    # becomes (job, role, file).
    db.execute("ALTER TABLE prov_used RENAME TO prov_used_m003")
    db.execute(
        """
        CREATE TABLE prov_used (
            job_id TEXT NOT NULL,
            role TEXT NOT NULL,
            sha256 TEXT NOT NULL,
            size INTEGER NOT NULL,
            content_type TEXT NOT NULL,
            name TEXT NOT NULL,
            location TEXT,
            time TEXT NOT NULL,
            PRIMARY KEY (job_id, role, sha256)
        )"""
    )
    db.execute("INSERT INTO prov_used SELECT * FROM prov_used_m003")
    db.execute("DROP TABLE prov_used_m003")
    db.execute("CREATE INDEX prov_used_entity ON prov_used (sha256)")


_TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"
_JOB_COLUMNS = (
    "job_id, service, owner, run_id, phase, creation_time, start_time, end_time,"
    " execution_duration, destruction, quote, error_type, error_message, error_detail, external_id"
)

# A full job's parameters and results, as JSON arrays of rows led by their position (an
# aggregate's order is not guaranteed before SQLite 3.44, so the reader sorts).
_FULL_COLUMNS = (
    ", (SELECT json_group_array(json_array(position, name, value, by_reference, known, file))"
    " FROM parameters WHERE parameters.job_id = jobs.job_id)"
    ", (SELECT json_group_array(json_array(position, result_id, path, mime_type, size, sha256))"
    " FROM results WHERE results.job_id = jobs.job_id)"
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

    def get(self, job_id: str, *, service: str | None = None, full: bool = True) -> Job | None:
        """The job with its parameters and results (without them unless ``full``), or None."""
        # One statement even for the full job: every statement releases and retakes the GIL,
        # which under many threads costs a burst of context switches (bench P1).
        sql = f"SELECT {_JOB_COLUMNS}{_FULL_COLUMNS if full else ''} FROM jobs WHERE job_id = ?"
        args: list[Any] = [job_id]
        if service is not None:
            sql += " AND service = ?"
            args.append(service)
        row = self._connection().execute(sql, args).fetchone()
        if row is None:
            return None
        if not full:
            return _job_from_row(row, (), ())
        width = len(row) - 2
        params = tuple(
            Parameter(name, value, bool(byref), bool(known), file)
            for _, name, value, byref, known, file in sorted(json.loads(row[width]))
        )
        results = tuple(Result(*r[1:]) for r in sorted(json.loads(row[width + 1])))
        return _job_from_row(row[:width], params, results)

    def phase(self, job_id: str) -> Phase | None:
        row = (
            self._connection()
            .execute("SELECT phase FROM jobs WHERE job_id = ?", (job_id,))
            .fetchone()
        )
        return None if row is None else Phase(row[0])

    def list(self, service: str, owner: str | None, flt: ListFilter) -> list[Job]:
        """Jobs of one owner (None: every owner) and service, newest first (without parameters
        and results)."""
        sql = f"SELECT {_JOB_COLUMNS} FROM jobs WHERE service = ?"
        args: list[Any] = [service]
        if owner is not None:
            sql += " AND owner = ?"
            args.append(owner)
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

    def list_page(
        self,
        services: Sequence[str],
        owner: str | None,
        phases: Sequence[Phase],
        offset: int,
        limit: int,
    ) -> list[Job]:
        """One page of the jobs of several services (the web pages' lists), newest first,
        without parameters and results; ARCHIVED only when asked for, as in ``list``."""
        if not services or limit <= 0:
            return []
        sql = f"SELECT {_JOB_COLUMNS} FROM jobs WHERE service IN ({','.join('?' * len(services))})"
        args: list[Any] = list(services)
        if owner is not None:
            sql += " AND owner = ?"
            args.append(owner)
        if phases:
            sql += f" AND phase IN ({','.join('?' * len(phases))})"
            args.extend(p.value for p in phases)
        else:
            sql += " AND phase != 'ARCHIVED'"
        sql += " ORDER BY creation_time DESC, rowid DESC LIMIT ? OFFSET ?"
        args.extend((limit, offset))
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
        # One statement, two index-only counts (jobs_active is (phase, creation_time)).
        queued, executing = (
            self._connection()
            .execute(
                "SELECT (SELECT count(*) FROM jobs WHERE phase = 'QUEUED' AND creation_time < ?),"
                " (SELECT count(*) FROM jobs WHERE phase = 'EXECUTING')",
                (to_db_time(creation_time),),
            )
            .fetchone()
        )
        return int(queued), int(executing)

    # -- writing ---------------------------------------------------------------------------

    def insert(self, job: Job, *, max_active: int = 0) -> bool:
        """Insert a new job with its parameters in one transaction.

        With ``max_active`` > 0 the job is inserted only if its owner has fewer active jobs,
        counted in the same transaction (two racing creations cannot both pass); returns
        whether it was inserted.
        """
        with self._write() as conn:
            if max_active > 0 and _count_active(conn, job.owner) >= max_active:
                return False
            conn.execute(
                f"INSERT INTO jobs ({_JOB_COLUMNS}) VALUES ({','.join('?' * 15)})",
                _job_to_row(job),
            )
            _insert_parameters(conn, job.id, job.parameters)
        return True

    def count_active(self, owner: str) -> int:
        """Jobs of ``owner`` in an active phase (PENDING to SUSPENDED), across services."""
        return _count_active(self._connection(), owner)

    def insert_many(self, jobs: Iterable[Job]) -> int:
        """Insert many new jobs in one transaction (imports, benchmarks); returns how many."""
        count = 0
        with self._write() as conn:
            for job in jobs:
                conn.execute(
                    f"INSERT INTO jobs ({_JOB_COLUMNS}) VALUES ({','.join('?' * 15)})",
                    _job_to_row(job),
                )
                _insert_parameters(conn, job.id, job.parameters)
                count += 1
        return count

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

    # -- provenance ------------------------------------------------------------------------

    def record_inputs(self, job_id: str, inputs: Sequence[UsedRecord]) -> None:
        """Replace the job's input files (by content hash) in the provenance tables."""
        with self._write() as conn:
            conn.execute("DELETE FROM prov_used WHERE job_id = ?", (job_id,))
            conn.executemany(
                # The same file twice in one role is one usage.
                "INSERT OR IGNORE INTO prov_used (job_id, role, sha256, size, content_type, name,"
                " location, time) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        job_id,
                        u.role,
                        u.sha256,
                        u.size,
                        u.content_type,
                        u.name,
                        u.location,
                        to_db_time(u.time),
                    )
                    for u in inputs
                ],
            )
            _add_entities(
                conn, [(u.sha256, u.size, u.content_type, u.name, u.time) for u in inputs]
            )

    def record_results(self, job_id: str, results: Sequence[GeneratedRecord]) -> None:
        """Replace the job's generated files; their entities hold a live copy again."""
        with self._write() as conn:
            conn.execute("DELETE FROM prov_generated WHERE job_id = ?", (job_id,))
            conn.executemany(
                "INSERT INTO prov_generated (job_id, role, sha256, size, content_type, name,"
                " time) VALUES (?, ?, ?, ?, ?, ?, ?)",
                [
                    (job_id, g.role, g.sha256, g.size, g.content_type, g.name, to_db_time(g.time))
                    for g in results
                ],
            )
            _add_entities(
                conn, [(g.sha256, g.size, g.content_type, g.name, g.time) for g in results]
            )
            conn.executemany(
                "UPDATE prov_entities SET invalidated = NULL WHERE sha256 = ?",
                [(g.sha256,) for g in results],
            )

    def invalidate_results(self, job_id: str, when: datetime) -> None:
        """The job's result files are gone: mark its generations, and every entity of which no
        result copy is left, invalidated at ``when``."""
        with self._write() as conn:
            _invalidate(conn, job_id, to_db_time(when))

    def retire(self, job_id: str, when: datetime) -> None:
        """Before a job is deleted: keep its activity record if it generated files (others
        may have used them), with its results invalidated; otherwise forget its provenance."""
        stamp = to_db_time(when)
        with self._write() as conn:
            if (
                conn.execute(
                    "SELECT 1 FROM prov_generated WHERE job_id = ? LIMIT 1", (job_id,)
                ).fetchone()
                is None
            ):
                conn.execute("DELETE FROM prov_used WHERE job_id = ?", (job_id,))
                return
            row = conn.execute(
                "SELECT service, owner, run_id, phase, creation_time, start_time, end_time,"
                " error_message FROM jobs WHERE job_id = ?",
                (job_id,),
            ).fetchone()
            if row is not None:
                params = conn.execute(
                    "SELECT name, value FROM parameters WHERE job_id = ? AND known = 1"
                    " AND file IS NULL ORDER BY position",
                    (job_id,),
                ).fetchall()
                conn.execute(
                    "INSERT OR REPLACE INTO prov_jobs (job_id, service, owner, run_id, phase,"
                    " creation_time, start_time, end_time, error_message, parameters, deleted)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (job_id, *row, json.dumps(params), stamp),
                )
            _invalidate(conn, job_id, stamp)

    def prov_activities(self, job_ids: Iterable[str]) -> dict[str, ActivityRecord]:
        """Live jobs and deleted jobs' records, by id."""
        out: dict[str, ActivityRecord] = {}
        conn = self._connection()
        ids = list(dict.fromkeys(job_ids))
        for chunk in _chunks(ids):
            marks = ",".join("?" * len(chunk))
            rows = conn.execute(
                "SELECT job_id, service, owner, run_id, phase, creation_time, start_time,"
                f" end_time, error_message FROM jobs WHERE job_id IN ({marks})",
                chunk,
            ).fetchall()
            params: dict[str, list[tuple[str, str]]] = {}
            for job_id, name, value in conn.execute(
                f"SELECT job_id, name, value FROM parameters WHERE job_id IN ({marks})"
                " AND known = 1 AND file IS NULL ORDER BY job_id, position",
                chunk,
            ):
                params.setdefault(job_id, []).append((name, value))
            for row in rows:
                out[row[0]] = _activity(row, tuple(params.get(row[0], ())), None)
            missing = [j for j in chunk if j not in out]
            if missing:
                for row in conn.execute(
                    "SELECT job_id, service, owner, run_id, phase, creation_time, start_time,"
                    " end_time, error_message, parameters, deleted FROM prov_jobs"
                    f" WHERE job_id IN ({','.join('?' * len(missing))})",
                    missing,
                ):
                    values = tuple((str(n), str(v)) for n, v in json.loads(row[9]))
                    out[row[0]] = _activity(row[:9], values, _from_db_time(row[10]))
        return out

    def prov_entities(self, hashes: Iterable[str]) -> dict[str, EntityRecord]:
        out: dict[str, EntityRecord] = {}
        conn = self._connection()
        for chunk in _chunks(list(dict.fromkeys(hashes))):
            for sha, size, ctype, name, first, invalidated in conn.execute(
                "SELECT sha256, size, content_type, name, first_seen, invalidated"
                f" FROM prov_entities WHERE sha256 IN ({','.join('?' * len(chunk))})",
                chunk,
            ):
                first_seen = _from_db_time(first)
                assert first_seen is not None
                out[sha] = EntityRecord(
                    sha, int(size), ctype, name, first_seen, _from_db_time(invalidated)
                )
        return out

    def prov_used_of(self, job_ids: Iterable[str]) -> list[UsedRecord]:
        """Inputs of these jobs."""
        return self._prov_used("job_id", job_ids)

    def prov_used_by(self, hashes: Iterable[str]) -> list[UsedRecord]:
        """Uses of these files."""
        return self._prov_used("sha256", hashes)

    def prov_generated_of(self, job_ids: Iterable[str]) -> list[GeneratedRecord]:
        """Results of these jobs."""
        return self._prov_generated("job_id", job_ids)

    def prov_generated_by(self, hashes: Iterable[str]) -> list[GeneratedRecord]:
        """Generations of these files."""
        return self._prov_generated("sha256", hashes)

    def prov_jobs_of_owners(self, owners: Iterable[str]) -> list[str]:
        """Every job (live or deleted with provenance kept) of these owners."""
        out: list[str] = []
        conn = self._connection()
        for chunk in _chunks(list(dict.fromkeys(owners))):
            marks = ",".join("?" * len(chunk))
            out += [
                r[0]
                for r in conn.execute(
                    f"SELECT job_id FROM jobs WHERE owner IN ({marks}) UNION"
                    f" SELECT job_id FROM prov_jobs WHERE owner IN ({marks})",
                    chunk + chunk,
                )
            ]
        return out

    def _prov_used(self, column: str, keys: Iterable[str]) -> list[UsedRecord]:
        out: list[UsedRecord] = []
        conn = self._connection()
        for chunk in _chunks(list(dict.fromkeys(keys))):
            for row in conn.execute(
                "SELECT job_id, role, sha256, size, content_type, name, location, time"
                f" FROM prov_used WHERE {column} IN ({','.join('?' * len(chunk))})",
                chunk,
            ):
                when = _from_db_time(row[7])
                assert when is not None
                out.append(UsedRecord(*row[:3], int(row[3]), row[4], row[5], row[6], when))
        return out

    def _prov_generated(self, column: str, keys: Iterable[str]) -> list[GeneratedRecord]:
        out: list[GeneratedRecord] = []
        conn = self._connection()
        for chunk in _chunks(list(dict.fromkeys(keys))):
            for row in conn.execute(
                "SELECT job_id, role, sha256, size, content_type, name, time, invalidated"
                f" FROM prov_generated WHERE {column} IN ({','.join('?' * len(chunk))})",
                chunk,
            ):
                when = _from_db_time(row[6])
                assert when is not None
                out.append(
                    GeneratedRecord(
                        *row[:3], int(row[3]), row[4], row[5], when, _from_db_time(row[7])
                    )
                )
        return out


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


def _chunks(items: list[str], size: int = 500) -> Iterable[list[str]]:
    """Slices small enough for one ``IN (…)`` list."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _add_entities(
    conn: sqlite3.Connection, rows: Sequence[tuple[str, int, str, str, datetime]]
) -> None:
    """Register file entities; the first name and content type seen for some bytes stay."""
    conn.executemany(
        "INSERT OR IGNORE INTO prov_entities (sha256, size, content_type, name, first_seen)"
        " VALUES (?, ?, ?, ?, ?)",
        [(sha, size, ctype, name, to_db_time(when)) for sha, size, ctype, name, when in rows],
    )


def _invalidate(conn: sqlite3.Connection, job_id: str, stamp: str | None) -> None:
    conn.execute(
        "UPDATE prov_generated SET invalidated = ? WHERE job_id = ? AND invalidated IS NULL",
        (stamp, job_id),
    )
    conn.execute(
        "UPDATE prov_entities SET invalidated = ? WHERE invalidated IS NULL AND sha256 IN"
        " (SELECT sha256 FROM prov_generated WHERE job_id = ?) AND NOT EXISTS"
        " (SELECT 1 FROM prov_generated g WHERE g.sha256 = prov_entities.sha256"
        " AND g.invalidated IS NULL)",
        (stamp, job_id),
    )


def _activity(
    row: Sequence[Any], parameters: tuple[tuple[str, str], ...], deleted: datetime | None
) -> ActivityRecord:
    job_id, service, owner, run_id, phase, created, started, ended, error = row
    creation = _from_db_time(created)
    assert creation is not None
    return ActivityRecord(
        job_id=job_id,
        service=service,
        owner=owner,
        phase=phase,
        creation_time=creation,
        start_time=_from_db_time(started),
        end_time=_from_db_time(ended),
        run_id=run_id,
        error=error,
        parameters=parameters,
        deleted=deleted,
    )


def _count_active(conn: sqlite3.Connection, owner: str) -> int:
    phases = [p.value for p in ACTIVE_PHASES]
    row = conn.execute(
        f"SELECT count(*) FROM jobs WHERE owner = ? AND phase IN ({','.join('?' * len(phases))})",
        [owner, *phases],
    ).fetchone()
    return int(row[0])


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
