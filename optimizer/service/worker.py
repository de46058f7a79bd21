"""One job in its own process: ``python -m optimizer.service.worker JOB_ID RUNS_DIR``.

The server starts one worker process per running job, so that a job that fails, crashes or hangs never
takes the server down. The worker runs the job as an apo run (a new one, or a resume of the job's run when a
server restart handed it over), records the run id in the job table as soon as the run has one, and at the end
the job's final state. A cancel is the first Ctrl-C of ``apo optimize``: the server sends SIGINT, the run
stops at its next model call and writes a partial result (status ``interrupted``), and the job ends
``cancelled``. The worker dies with the server (it watches its parent), and the next server resumes the run.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
import traceback
from pathlib import Path

from optimizer.errors import ApoError, RunLockedError
from optimizer.run.progress import Reporter
from optimizer.service.store import DB_NAME, Job, JobState, JobStore
from optimizer.types import RunResult

__all__ = ["JobReporter", "main", "outcome", "run_job", "watch_parent"]

LOCK_WAIT_S = 30.0
"""How long a resume waits for a run's lock, held by a worker of a killed server that has not died yet."""


CANCEL_REASON = "cancelled (POST /jobs/{id}/cancel)"
"""The stop reason a cancelled job's result records."""


class JobReporter(Reporter):
    """Records the job's run id in the job table the moment the run has one.

    Args:
        store: the job table.
        job_id: the job.
    """

    def __init__(self, store: JobStore, job_id: str) -> None:
        self.store = store
        self.job_id = job_id

    def started(self, run_id: str, run_dir: str, resumed: bool) -> None:
        self.store.set_run_id(self.job_id, run_id)


def watch_parent() -> None:
    """End this process (SIGKILL, as the server's death was) as soon as its parent, the server, is gone."""
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.2)
        os.kill(os.getpid(), signal.SIGKILL)

    threading.Thread(target=watch, name="apo-parent-watch", daemon=True).start()


def _resumable(job: Job, runs_dir: Path) -> bool:
    return bool(job.run_id) and (runs_dir / str(job.run_id) / "config.json").exists()


def run_job(job: Job, runs_dir: Path, store: JobStore) -> RunResult:
    """Run the job: resume its run when it has one with a stored configuration, else start it.

    Args:
        job: the job, as claimed.
        runs_dir: the runs folder.
        store: the job table.

    Returns:
        The run's result (status ``interrupted`` when a cancel stopped it).
    """
    from optimizer.config import RunConfig
    from optimizer.run.engine import resume, run

    reporter = JobReporter(store, job.id)
    if not _resumable(job, runs_dir):
        config = RunConfig.model_validate(job.config)
        return run(config, runs_dir=runs_dir, reporter=reporter, handle_interrupt=True)
    deadline = time.monotonic() + LOCK_WAIT_S
    while True:
        try:
            return resume(str(job.run_id), runs_dir=runs_dir, reporter=reporter, handle_interrupt=True)
        except RunLockedError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def outcome(result: RunResult, cancelled: bool) -> JobState:
    """A job's final state from its run's result."""
    if result.status == "interrupted":
        return "cancelled" if cancelled else "partial"
    return "complete" if result.status == "complete" else "partial"


def _cancel_asked(store: JobStore, job_id: str) -> bool:
    job = store.get(job_id)
    return job is not None and job.cancel_requested is not None


def main(argv: list[str] | None = None, *, watch_parent_process: bool = True) -> int:
    """Run one job of the job table and record its final state.

    Args:
        argv: ``[JOB_ID, RUNS_DIR]`` (default: ``sys.argv[1:]``).
        watch_parent_process: die with the parent process (a worker process of the server; not a Ray task,
            whose worker Ray stops when the server goes).

    Returns:
        0 when the job reached a final state of its own (complete, partial, cancelled), 1 when it failed.
    """
    from optimizer.run.interrupt import StopOnInterrupt

    job_id, runs = argv if argv is not None else sys.argv[1:]
    runs_dir = Path(runs)
    if watch_parent_process:
        watch_parent()
    StopOnInterrupt.reason = CANCEL_REASON  # this process is stopped by SIGINT only for a cancel
    store = JobStore(runs_dir / DB_NAME)
    job = store.get(job_id)
    if job is None or job.state != "running":
        return 1
    try:
        result = run_job(job, runs_dir, store)
    except KeyboardInterrupt:  # a cancel before the run could stop gracefully (while loading, or a second one)
        store.finish(job_id, "cancelled" if _cancel_asked(store, job_id) else "failed", "stopped before it ended")
        return 0
    except ApoError as exc:
        store.finish(job_id, "failed", str(exc))
        return 1
    except Exception as exc:
        traceback.print_exc()  # into the job's log file, never into the API
        store.finish(job_id, "failed", f"internal error: {type(exc).__name__}: {exc} (this is a bug in apo)")
        return 1
    store.finish(job_id, outcome(result, _cancel_asked(store, job_id)), spent=(result.calls, result.cost_usd))
    return 0


if __name__ == "__main__":
    sys.exit(main())
