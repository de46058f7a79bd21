"""The job table's budget accounting and the scheduler's cancel of a worker that ignores SIGINT."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import time

from optimizer.service.models import ServiceSettings
from optimizer.service.scheduler import Scheduler, _Worker
from optimizer.service.store import Job, JobStore


def _job(store: JobStore, job_id: str, calls: int | None = None, cost: float | None = None) -> None:
    store.add(Job(id=job_id, created=time.time(), state="queued", task="sum", config={}, api_calls=calls,
                  api_cost=cost))


def test_the_total_counts_what_finished_jobs_spent_and_what_open_jobs_may_spend(tmp_path):
    store = JobStore(tmp_path / "service.sqlite")
    _job(store, "a", 400, 2.0)
    assert store.committed() == (400, 2.0)  # queued: its whole budget
    assert store.claim_next().id == "a"
    assert store.committed() == (400, 2.0)  # running: its whole budget
    assert store.finish("a", "complete", spent=(37, 0.25))
    assert store.committed() == (37, 0.25)  # finished: what it spent, the rest is free again
    _job(store, "b", 300)
    store.claim_next()
    store.finish("b", "failed", "the worker crashed")  # ended without a result: its spending is unknown
    assert store.committed() == (337, 0.25)
    _job(store, "c", 1000)
    store.request_cancel("c")  # cancelled before it started: nothing
    _job(store, "d")  # a local-model job holds nothing
    assert store.committed() == (337, 0.25)


def test_an_older_job_table_gains_the_new_columns(tmp_path):
    path = tmp_path / "service.sqlite"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE jobs (id TEXT PRIMARY KEY, created REAL NOT NULL, state TEXT NOT NULL, task TEXT NOT "
               "NULL, config TEXT NOT NULL, api_calls INTEGER, api_cost REAL, run_id TEXT, error TEXT, started REAL, "
               "finished REAL, cancel_requested REAL, attempts INTEGER NOT NULL DEFAULT 0)")
    db.execute("INSERT INTO jobs (id, created, state, task, config, api_calls) VALUES ('old', 0, 'complete', 'sum', "
               "'{}', 50)")
    db.commit()
    db.close()
    store = JobStore(path)
    assert store.get("old").state == "complete" and store.committed() == (50, 0.0)


def test_a_worker_that_ignores_sigint_is_killed_once_the_cancel_grace_is_over(tmp_path):
    store = JobStore(tmp_path / "service.sqlite")
    _job(store, "stubborn")
    store.claim_next()
    settings = ServiceSettings(runs_dir=tmp_path, cancel_grace=1.0)
    scheduler = Scheduler(store, settings)
    code = "import signal, time; signal.signal(signal.SIGINT, signal.SIG_IGN); print('ready', flush=True); " \
           "time.sleep(120)"
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        scheduler.workers["stubborn"] = _Worker("stubborn", proc, tmp_path / "stubborn.log")
        store.request_cancel("stubborn")
        scheduler.tick()  # SIGINT: ignored
        asked = time.monotonic()
        time.sleep(0.5)
        scheduler.tick()
        assert proc.poll() is None and store.get("stubborn").state == "running"  # still within the grace
        while "stubborn" in scheduler.workers and time.monotonic() - asked < 30:
            scheduler.tick()
            time.sleep(0.1)
        assert proc.wait(timeout=10) == -9 and time.monotonic() - asked >= 1.0
        job = store.get("stubborn")
        assert job.state == "cancelled" and "did not stop within the grace period" in str(job.error)
    finally:
        if proc.poll() is None:
            proc.kill()
