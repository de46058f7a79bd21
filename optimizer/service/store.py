"""The job table of ``apo serve``: one SQLite file, ``<runs dir>/service.sqlite``, in WAL mode.

The server and its worker processes share it: the server queues, starts and cancels jobs; a worker records
its job's run id as soon as the run has one, and its outcome. Every change is one short transaction, and
changes of state are conditional (``WHERE state = ...``), so that a late writer never overwrites a final state.
A server killed at any moment finds, on its next start, each job in the state it last committed
(:meth:`JobStore.recover` then requeues the ones that were running, which resume from their run's journal).
"""

from __future__ import annotations

import json
import secrets
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

__all__ = ["DB_NAME", "FINAL_STATES", "Job", "JobState", "JobStore", "new_job_id"]

DB_NAME = "service.sqlite"
"""The job table's file name inside the runs folder."""

JobState = Literal["queued", "running", "complete", "partial", "failed", "cancelled"]
FINAL_STATES = frozenset({"complete", "partial", "failed", "cancelled"})
"""States a job never leaves."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    created REAL NOT NULL,
    state TEXT NOT NULL,
    task TEXT NOT NULL,
    config TEXT NOT NULL,
    api_calls INTEGER,
    api_cost REAL,
    run_id TEXT,
    error TEXT,
    started REAL,
    finished REAL,
    cancel_requested REAL,
    attempts INTEGER NOT NULL DEFAULT 0,
    spent_calls INTEGER,
    spent_cost REAL
)
"""
_ADDED = {"spent_calls": "INTEGER", "spent_cost": "REAL"}
"""Columns added since the table's first version (added to an older file on open)."""


def new_job_id() -> str:
    """A new job id: sortable by submission time, safe in a path (``20260101-120000-1a2b3c``)."""
    return f"{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(3)}"


class Job(BaseModel):
    """One row of the job table."""

    model_config = ConfigDict(use_attribute_docstrings=True)

    id: str
    """The job id."""
    created: float
    """Submission time (Unix seconds)."""
    state: JobState
    """``queued``, ``running``, ``complete``, ``partial`` (stopped by its budget), ``failed`` or ``cancelled``."""
    task: str
    """The task's name (an uploaded task's own name)."""
    config: dict[str, Any]
    """The validated job (a :class:`~optimizer.config.RunConfig` as JSON, only the fields given)."""
    api_calls: int | None = None
    """The call budget committed against the server's total, for a job with an API model."""
    api_cost: float | None = None
    """The dollar budget committed against the server's total, for a job with an API model."""
    run_id: str | None = None
    """The apo run doing the job, once it has one (``apo runs show RUN_ID``)."""
    error: str | None = None
    """Why the job failed (plain text)."""
    started: float | None = None
    """When a worker last started on it."""
    finished: float | None = None
    """When it reached its final state."""
    cancel_requested: float | None = None
    """When a cancel was asked for, while it ran."""
    attempts: int = 0
    """Worker processes started for it (more than one after a server restart)."""


class JobStore:
    """The job table.

    Example::

        store = JobStore(runs_dir / "service.sqlite")
        store.add(Job(id=new_job_id(), created=time.time(), state="queued", task="sum", config={...}))
        job = store.claim_next()      # queued -> running, oldest first

    Args:
        path: the SQLite file (created with its table if missing).
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute(_SCHEMA)
            have = {row[1] for row in db.execute("PRAGMA table_info(jobs)")}
            for column, kind in _ADDED.items():
                if column not in have:
                    db.execute(f"ALTER TABLE jobs ADD COLUMN {column} {kind}")
        finally:
            db.close()

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        db.row_factory = sqlite3.Row
        try:
            db.execute("BEGIN IMMEDIATE")
            yield db
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
        finally:
            db.close()

    @staticmethod
    def _job(row: sqlite3.Row) -> Job:
        data = dict(row)
        data["config"] = json.loads(data["config"])
        return Job.model_validate(data)

    def add(self, job: Job) -> None:
        """Insert a new job."""
        data = job.model_dump()
        data["config"] = json.dumps(data["config"])
        names = ", ".join(data)
        with self._connect() as db:
            db.execute(f"INSERT INTO jobs ({names}) VALUES ({', '.join('?' * len(data))})", tuple(data.values()))

    def get(self, job_id: str) -> Job | None:
        """One job, or None."""
        with self._connect() as db:
            row = db.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return self._job(row) if row else None

    def all(self, states: frozenset[str] | None = None) -> list[Job]:
        """Every job (or those in ``states``), oldest first."""
        with self._connect() as db:
            rows = db.execute("SELECT * FROM jobs ORDER BY created, id").fetchall()
        jobs = [self._job(r) for r in rows]
        return [j for j in jobs if states is None or j.state in states]

    def committed(self) -> tuple[int, float]:
        """The calls and dollars held against the server's totals by its API-model jobs: what a finished job
        spent (its run's result), and the whole budget of a queued or running one (or of one that ended
        without a result, whose spending is unknown); nothing for one cancelled or failed before it started."""
        with self._connect() as db:
            row = db.execute(
                "SELECT COALESCE(SUM(CASE WHEN spent_calls IS NOT NULL THEN spent_calls ELSE api_calls END), 0), "
                "COALESCE(SUM(CASE WHEN spent_cost IS NOT NULL AND api_cost IS NOT NULL THEN spent_cost "
                "ELSE api_cost END), 0) FROM jobs WHERE (api_calls IS NOT NULL OR api_cost IS NOT NULL) "
                "AND NOT (state IN ('failed', 'cancelled') AND started IS NULL)").fetchone()
        return int(row[0]), float(row[1])

    def claim_next(self) -> Job | None:
        """Move the oldest queued job to ``running`` and return it (None when none is queued)."""
        with self._connect() as db:
            row = db.execute("SELECT id FROM jobs WHERE state = 'queued' ORDER BY created, id LIMIT 1").fetchone()
            if row is None:
                return None
            db.execute("UPDATE jobs SET state = 'running', started = ?, attempts = attempts + 1 WHERE id = ?",
                       (time.time(), row["id"]))
            job = db.execute("SELECT * FROM jobs WHERE id = ?", (row["id"],)).fetchone()
        return self._job(job)

    def set_run_id(self, job_id: str, run_id: str) -> None:
        """Record the run doing a job."""
        with self._connect() as db:
            db.execute("UPDATE jobs SET run_id = ? WHERE id = ?", (run_id, job_id))

    def finish(self, job_id: str, state: JobState, error: str | None = None, *, only_from: str = "running",
               spent: tuple[int, float] | None = None) -> bool:
        """Move a job to a final state, only if it is still in ``only_from``.

        Args:
            spent: the calls and dollars its run spent (from its result), which then count against the server's
                totals instead of the job's whole budget.

        Returns:
            Whether the job changed.
        """
        calls, cost = spent if spent is not None else (None, None)
        with self._connect() as db:
            cur = db.execute("UPDATE jobs SET state = ?, error = ?, finished = ?, spent_calls = ?, spent_cost = ? "
                             "WHERE id = ? AND state = ?", (state, error, time.time(), calls, cost, job_id, only_from))
        return cur.rowcount == 1

    def request_cancel(self, job_id: str) -> Job | None:
        """Cancel a queued job at once, or mark a running one for a graceful stop; returns the job after."""
        with self._connect() as db:
            now = time.time()
            db.execute("UPDATE jobs SET state = 'cancelled', finished = ? WHERE id = ? AND state = 'queued'",
                       (now, job_id))
            db.execute("UPDATE jobs SET cancel_requested = ? WHERE id = ? AND state = 'running' "
                       "AND cancel_requested IS NULL", (now, job_id))
            row = db.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return self._job(row) if row else None

    def requeue(self, job_id: str) -> None:
        """Put a running job back in the queue (its run resumes when a worker takes it again)."""
        with self._connect() as db:
            db.execute("UPDATE jobs SET state = 'queued' WHERE id = ? AND state = 'running'", (job_id,))
