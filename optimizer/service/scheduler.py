"""The server's job loop: recover after a restart, start queued jobs in worker processes, pass cancels on, reap.

One thread in the server process, waking a few times a second. Worker processes run
``python -m optimizer.service.worker`` in their own session (a Ctrl-C typed at the server's terminal does not
reach them), with their output in ``<runs dir>/service-logs/<job id>.log``.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from optimizer.service.models import ServiceSettings
from optimizer.service.store import Job, JobStore

__all__ = ["LOGS", "Scheduler", "recover"]

LOGS = "service-logs"
"""The folder of the runs folder holding each worker's output."""

TICK_S = 0.2


def _finished_status(job: Job, runs_dir: Path) -> str | None:
    """The status of the job's run result when the run finished for good (complete or partial), else None."""
    if not job.run_id:
        return None
    path = runs_dir / job.run_id / "result.json"
    try:
        status = json.loads(path.read_text(encoding="utf-8")).get("status")
    except (OSError, ValueError, AttributeError):
        return None
    return status if status in ("complete", "partial") else None


def recover(store: JobStore, runs_dir: Path) -> None:
    """Settle the jobs a killed server left ``running``: cancelled when a cancel was asked for, finished when
    their run wrote its final result, else queued again (their run resumes from its journal)."""
    for job in store.all(frozenset({"running"})):
        if job.cancel_requested is not None:
            store.finish(job.id, "cancelled")
        elif (status := _finished_status(job, runs_dir)) is not None:
            store.finish(job.id, "complete" if status == "complete" else "partial")
        else:
            store.requeue(job.id)


@dataclass
class _Worker:
    job_id: str
    proc: Any  # a subprocess.Popen, or a RayHandle with the same poll, send_signal, kill and wait
    log: Path
    signalled: float | None = None


class Scheduler:
    """Runs queued jobs, at most ``settings.workers`` at once.

    Example::

        scheduler = Scheduler(store, settings)
        scheduler.start()      # recovers, then starts jobs as they are queued
        ...
        scheduler.stop()       # kills the workers; their jobs stay running and resume on the next start

    Args:
        store: the job table.
        settings: the server's settings.
    """

    def __init__(self, store: JobStore, settings: ServiceSettings) -> None:
        self.store = store
        self.settings = settings
        self.workers: dict[str, _Worker] = {}
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self.ray: Any = None  # a RayLauncher with the ray executor

    def start(self) -> None:
        """Recover the job table, join or start Ray (the ``ray`` executor), and start the loop thread."""
        recover(self.store, self.settings.runs_dir)
        if self.settings.executor == "ray":
            from optimizer.service.executors import RayLauncher

            if self.settings.data_dir is not None:
                os.environ["APO_DATA_DIR"] = str(self.settings.data_dir)  # handed to the Ray workers
            self.ray = RayLauncher(self.settings.ray_address, self.settings.workers)
        self._thread = threading.Thread(target=self._loop, name="apo-scheduler", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        """Look at the queue now (a job was submitted or cancelled)."""
        self._wake.set()

    def stop(self) -> None:
        """Stop the loop and kill the workers (their jobs stay ``running``; the next server resumes them)."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        for worker in list(self.workers.values()):
            if worker.proc.poll() is None:
                worker.proc.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                worker.proc.wait(timeout=10)
        if self.ray is not None:
            self.ray.shutdown()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.tick()
            except Exception as exc:  # the loop must outlive any one bad tick
                print(f"apo serve: scheduler error: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
            self._wake.wait(TICK_S)
            self._wake.clear()

    def tick(self) -> None:
        """One pass: reap ended workers, pass cancels on, start queued jobs into free slots."""
        for job_id, worker in list(self.workers.items()):
            code = worker.proc.poll()
            if code is not None:
                del self.workers[job_id]
                self._reaped(job_id, code, worker)
            else:
                self._cancel(worker)
        while len(self.workers) < self.settings.workers and not self._stop.is_set():
            job = self.store.claim_next()
            if job is None:
                break
            self.workers[job.id] = self._launch(job)

    def _launch(self, job: Job) -> _Worker:
        logs = self.settings.runs_dir / LOGS
        logs.mkdir(parents=True, exist_ok=True)
        log = logs / f"{job.id}.log"
        if self.ray is not None:  # the task's output goes to Ray's logs
            return _Worker(job.id, self.ray.launch(job.id, self.settings.runs_dir), log)
        env = dict(os.environ)
        if self.settings.data_dir is not None:
            env["APO_DATA_DIR"] = str(self.settings.data_dir)
        with open(log, "ab") as out:
            proc = subprocess.Popen([sys.executable, "-m", "optimizer.service.worker", job.id,
                                     str(self.settings.runs_dir)], stdin=subprocess.DEVNULL, stdout=out,
                                    stderr=subprocess.STDOUT, env=env, start_new_session=True)
        return _Worker(job.id, proc, log)

    def _cancel(self, worker: _Worker) -> None:
        """SIGINT a worker whose job was cancelled (a graceful stop); SIGKILL it once the grace period is over."""
        job = self.store.get(worker.job_id)
        if job is None or job.cancel_requested is None:
            return
        if worker.signalled is None:
            worker.signalled = time.monotonic()
            with contextlib.suppress(ProcessLookupError):
                worker.proc.send_signal(signal.SIGINT)
        elif time.monotonic() - worker.signalled > self.settings.cancel_grace:
            with contextlib.suppress(ProcessLookupError):
                worker.proc.kill()

    def _reaped(self, job_id: str, code: int, worker: _Worker) -> None:
        """A worker ended: a job it left running was cancelled (killed after a cancel) or failed (it crashed)."""
        job = self.store.get(job_id)
        if job is None or job.state != "running":
            return
        if job.cancel_requested is not None:
            self.store.finish(job_id, "cancelled", "stopped at once: it did not stop within the grace period")
            return
        if getattr(worker.proc, "error", None):  # a Ray task Ray gave up on
            self.store.finish(job_id, "failed", f"the job's Ray task ended before the job did: {worker.proc.error}")
            return
        how = f"was killed by signal {-code}" if code < 0 else f"exited with code {code}"
        self.store.finish(job_id, "failed", f"the job's worker process {how} before the job ended; its output is "
                                            f"in the server's {LOGS}/{worker.log.name}")
