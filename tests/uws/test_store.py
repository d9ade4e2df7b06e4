"""JobStore on a real SQLite file: migrations, compare-and-set, filters, indexes, concurrency."""

from __future__ import annotations

import sqlite3
import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlite_utils import Database

from opus_min.uws.model import Job, Parameter, Phase, Result
from opus_min.uws.store import MIGRATIONS, JobStore, ListFilter


def make_job(
    job_id: str,
    *,
    created: datetime,
    phase: Phase = Phase.PENDING,
    owner: str = "",
    service: str = "echo",
) -> Job:
    return Job(
        id=job_id,
        service=service,
        owner=owner,
        phase=phase,
        creation_time=created,
        execution_duration=60,
        destruction=created + timedelta(days=1),
        parameters=(Parameter("text", "hi"), Parameter("REQUEST", "doQuery", known=False)),
    )


@pytest.fixture
def store(tmp_path):
    return JobStore(tmp_path / "jobs.sqlite")


T0 = datetime(2026, 1, 1, tzinfo=UTC)


def test_schema_is_migrated_once_and_in_wal_mode(tmp_path):
    path = tmp_path / "jobs.sqlite"
    JobStore(path).insert(make_job("1a", created=T0))
    again = JobStore(path)  # reopening applies nothing twice and keeps the data
    assert again.get("1a").parameters[0] == Parameter("text", "hi")
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    applied = [name for (name,) in conn.execute("SELECT name FROM _sqlite_migrations")]
    # Each registered migration exactly once, in registration order.
    assert applied == [m.name for m in MIGRATIONS.pending(Database(memory=True))]
    assert applied[:2] == ["m001_initial", "m002_users"]


def test_round_trip(store):
    job = make_job("1b", created=T0)
    store.insert(job)
    assert store.get("1b") == job
    assert store.get("1b", service="other") is None
    assert store.get("nope") is None


def test_compare_and_set(store):
    store.insert(make_job("1c", created=T0))
    assert store.transition("1c", [Phase.PENDING], Phase.QUEUED)
    assert not store.transition("1c", [Phase.PENDING], Phase.QUEUED)
    results = [Result("out", "out.txt", "text/plain", 3, "ab" * 32)]
    assert store.transition(
        "1c", [Phase.QUEUED], Phase.COMPLETED, results=results, end_time=T0 + timedelta(seconds=5)
    )
    job = store.get("1c")
    assert job.phase is Phase.COMPLETED and job.results == tuple(results)
    assert job.end_time == T0 + timedelta(seconds=5)
    # A late ABORT or ERROR cannot resurrect or overwrite a finished job.
    assert not store.transition("1c", [Phase.QUEUED, Phase.EXECUTING], Phase.ABORTED)
    assert store.get("1c").phase is Phase.COMPLETED


def test_racing_transitions_have_one_winner(tmp_path):
    path = tmp_path / "race.sqlite"
    JobStore(path).insert(make_job("1d", created=T0, phase=Phase.EXECUTING))
    wins: list[Phase] = []
    barrier = threading.Barrier(8)

    def contender(target: Phase) -> None:
        store = JobStore(path)  # each thread its own connection, as in the server
        barrier.wait()
        if store.transition("1d", [Phase.EXECUTING], target):
            wins.append(target)

    threads = [
        threading.Thread(target=contender, args=(p,))
        for p in [Phase.COMPLETED, Phase.ABORTED, Phase.ERROR, Phase.COMPLETED] * 2
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(wins) == 1
    assert JobStore(path).get("1d").phase is wins[0]


def test_list_filters_and_order(store):
    for i in range(6):
        phase = [Phase.PENDING, Phase.COMPLETED, Phase.ARCHIVED][i % 3]
        store.insert(make_job(f"{i}x", created=T0 + timedelta(seconds=i), phase=phase))
    store.insert(make_job("9other", created=T0, owner="alice"))
    ids = lambda flt: [j.id for j in store.list("echo", "", flt)]  # noqa: E731
    assert ids(ListFilter()) == ["4x", "3x", "1x", "0x"]  # ARCHIVED hidden, newest first
    assert ids(ListFilter(phases=(Phase.ARCHIVED,))) == ["5x", "2x"]
    assert ids(ListFilter(last=2)) == ["4x", "3x"]
    assert ids(ListFilter(after=T0 + timedelta(seconds=1))) == ["4x", "3x"]
    assert ids(ListFilter(phases=(Phase.PENDING, Phase.COMPLETED), last=3)) == ["4x", "3x", "1x"]
    assert [j.id for j in store.list("echo", "alice", ListFilter())] == ["9other"]


def test_list_queries_use_the_indexes(store):
    conn = store._connection()
    plans = []
    for where in ("phase != 'ARCHIVED'", "phase IN ('EXECUTING')"):
        plan = conn.execute(
            "EXPLAIN QUERY PLAN SELECT job_id FROM jobs WHERE service = 'echo' AND owner = ''"
            f" AND {where} AND creation_time > '2026' ORDER BY creation_time DESC LIMIT 20"
        ).fetchall()
        plans.append(" ".join(row[-1] for row in plan))
    assert all("USING INDEX jobs_" in p for p in plans), plans
    assert "SCAN jobs" not in " ".join(plans).replace("USING INDEX", "")


def test_delete_cascades(store):
    store.insert(make_job("1e", created=T0))
    store.transition(
        "1e",
        [Phase.PENDING],
        Phase.COMPLETED,
        results=[Result("r", "r.txt", "text/plain", 1, "0" * 64)],
    )
    assert store.delete("1e")
    conn = store._connection()
    assert conn.execute("SELECT count(*) FROM parameters").fetchone()[0] == 0
    assert conn.execute("SELECT count(*) FROM results").fetchone()[0] == 0
    assert not store.delete("1e")


def test_replace_parameters_only_while_pending(store):
    store.insert(make_job("1f", created=T0))
    assert store.replace_parameters("1f", [Parameter("text", "new")], "r2", True)
    job = store.get("1f")
    assert job.parameters == (Parameter("text", "new"),) and job.run_id == "r2"
    store.transition("1f", [Phase.PENDING], Phase.QUEUED)
    assert not store.replace_parameters("1f", [Parameter("text", "late")], None, False)
    assert store.get("1f").parameters == (Parameter("text", "new"),)
