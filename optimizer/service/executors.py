"""Where jobs run: a pool of local worker processes, or Ray tasks on a local instance or a cluster.

A sweep's job body is :func:`run_sweep_job`: it resumes the job's run when the run exists (a retry after its
worker died, or a sweep run again) and starts it under its fixed run id otherwise, then writes the job's
outcome to ``jobs/NNN.json`` beside the sweep's manifest. ``python -m optimizer.service.executors MANIFEST
INDEX RUNS_DIR`` runs it in a local worker process; a Ray task runs it in a Ray worker. Either way a worker
that dies mid-job (SIGKILL, out of memory) is started again up to ``retries`` times, and the run's journal
makes the retry lose nothing and score nothing twice. A Ctrl-C stops the jobs in flight gracefully (each
writes a partial result) and the next ``apo sweep`` of the same file continues them.

The server's Ray launcher (:class:`RayLauncher`) runs ``apo serve`` jobs as Ray tasks in the same way.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any

from optimizer.errors import ApoError, RunAborted, RunLockedError, UsageError
from optimizer.run.store import write_json_atomic
from optimizer.service.sweep_jobs import SweepJob, SweepOutcome, read_outcome

__all__ = ["LocalExecutor", "RayExecutor", "RayLauncher", "init_ray", "run_sweep_job"]

Notify = Callable[[str, SweepJob, SweepOutcome | None], None]
LOCK_WAIT_S = 30.0
"""How long a job waits for its run's lock, held by a dying worker of an earlier attempt."""


def _outcome_path(manifest: Path, index: int) -> Path:
    return manifest.parent / "jobs" / f"{index:03d}.json"


def _starts_path(manifest: Path, index: int) -> Path:
    return manifest.parent / "jobs" / f"{index:03d}.starts"


def run_sweep_job(manifest: str | Path, index: int, runs_dir: str | Path, *, handle_interrupt: bool = True,
                  ) -> dict[str, Any]:
    """Do one job of a sweep in this process and record its outcome.

    Args:
        manifest: the sweep's ``sweep.json``.
        index: the job's index.
        runs_dir: the runs folder.
        handle_interrupt: a first SIGINT stops the run gracefully (main thread only).

    Returns:
        The :class:`~optimizer.service.sweep.SweepOutcome` as a dict (also written to ``jobs/NNN.json``).
    """
    from optimizer.config import RunConfig
    from optimizer.run.engine import resume, run

    manifest, root = Path(manifest), Path(runs_dir)
    job = SweepJob.model_validate(json.loads(manifest.read_text(encoding="utf-8"))["jobs"][index])
    with open(_starts_path(manifest, index), "a", encoding="utf-8") as fh:
        fh.write(f"{os.getpid()} {time.time():.3f}\n")
    outcome = read_outcome(job, root)
    if outcome is None:
        try:
            deadline = time.monotonic() + LOCK_WAIT_S
            while True:
                try:
                    if (root / job.run_id / "config.json").exists():
                        result = resume(job.run_id, runs_dir=root, handle_interrupt=handle_interrupt)
                    else:
                        result = run(RunConfig.model_validate(job.config), runs_dir=root, run_id=job.run_id,
                                     handle_interrupt=handle_interrupt)
                    break
                except RunLockedError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.2)
            state = {"complete": "complete", "interrupted": "interrupted"}.get(result.status, "partial")
            outcome = SweepOutcome(index=index, run_id=job.run_id, state=state)  # type: ignore[arg-type]
        except (KeyboardInterrupt, RunAborted):
            outcome = SweepOutcome(index=index, run_id=job.run_id, state="interrupted")
        except ApoError as exc:
            outcome = SweepOutcome(index=index, run_id=job.run_id, state="failed", error=str(exc))
        except Exception as exc:
            traceback.print_exc()  # into the job's log
            outcome = SweepOutcome(index=index, run_id=job.run_id, state="failed",
                                   error=f"internal error: {type(exc).__name__}: {exc} (this is a bug in apo)")
    outcome.attempts = _attempts(manifest, index)  # this start and those of workers that died before it
    write_json_atomic(_outcome_path(manifest, index), outcome.model_dump(mode="json"))
    return outcome.model_dump(mode="json")


def _attempts(manifest: Path, index: int) -> int:
    try:
        return max(1, len(_starts_path(manifest, index).read_text(encoding="utf-8").splitlines()))
    except OSError:
        return 1


def _clear(manifest: Path, index: int) -> None:
    for path in (_outcome_path(manifest, index), _starts_path(manifest, index)):
        path.unlink(missing_ok=True)


class LocalExecutor:
    """Runs jobs in worker processes on this machine, ``workers`` at once.

    Args:
        workers: jobs at once.
        retries: restarts of a job whose worker process died before it recorded an outcome.
    """

    def __init__(self, workers: int, retries: int) -> None:
        self.workers, self.retries = workers, retries
        self._stop = threading.Event()

    def _one(self, job: SweepJob, manifest: Path, root: Path, notify: Notify) -> SweepOutcome:
        log = manifest.parent / "logs" / f"{job.index:03d}.log"
        log.parent.mkdir(exist_ok=True)
        _clear(manifest, job.index)
        why = ""
        for attempt in range(1, self.retries + 2):
            if self._stop.is_set():
                return SweepOutcome(index=job.index, run_id=job.run_id, state="interrupted", attempts=attempt - 1)
            notify("start", job, None)
            with open(log, "ab") as out:
                proc = subprocess.Popen([sys.executable, "-m", "optimizer.service.executors", str(manifest),
                                         str(job.index), str(root)], stdin=subprocess.DEVNULL, stdout=out,
                                        stderr=subprocess.STDOUT)
                code = proc.wait()
            try:
                return SweepOutcome.model_validate_json(_outcome_path(manifest, job.index).read_text("utf-8"))
            except (OSError, ValueError):
                why = f"was killed by signal {-code}" if code < 0 else f"exited with code {code}"
        return SweepOutcome(index=job.index, run_id=job.run_id, state="failed", attempts=self.retries + 1,
                            error=f"its worker process {why} before the job ended, {self.retries + 1} time(s); "
                                  f"its output is in {log}")

    def run(self, jobs: list[SweepJob], manifest: Path, root: Path, notify: Notify) -> Iterator[SweepOutcome]:
        """Run the jobs; yields each outcome as its job ends. Ctrl-C: the workers stop gracefully (they share
        the terminal's process group), no new job starts, and KeyboardInterrupt is raised once they have."""
        pool = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="apo-sweep")
        futures: dict[Future[SweepOutcome], SweepJob] = {
            pool.submit(self._one, job, manifest, root, notify): job for job in jobs}
        pending = set(futures)
        try:
            while pending:
                done, pending = wait(pending, timeout=0.5, return_when=FIRST_COMPLETED)
                for future in done:
                    outcome = future.result()
                    notify("done", futures[future], outcome)
                    yield outcome
        except KeyboardInterrupt:
            self._stop.set()
            for future in pending:
                future.cancel()
            pool.shutdown(wait=True)  # the workers got the same SIGINT and write partial results
            raise
        pool.shutdown(wait=True)


def _ray_env() -> dict[str, str]:
    """The environment a Ray worker needs from this process: apo's own settings (never provider keys: each
    node takes those from its own environment)."""
    return {k: v for k, v in os.environ.items() if k.startswith(("APO_", "HF_")) or k == "PYTHONPATH"}


def init_ray(address: str | None, cpus: int) -> bool:
    """Join the Ray cluster at ``address`` (``auto``, ``ray://HOST:PORT``), or start a local instance on
    127.0.0.1 with ``cpus`` CPUs. Returns whether this call started Ray (and should shut it down).

    Raises:
        UsageError: Ray is not installed, or the cluster cannot be reached.
    """
    try:
        import ray
    except ImportError:
        raise UsageError("--executor ray needs Ray: pip install 'ray>=2.40' (or the project's ray extra: "
                         "pip install -e '.[ray]')") from None
    if ray.is_initialized():
        return False
    runtime_env = {"env_vars": _ray_env()}
    try:
        if address is None:
            ray.init(num_cpus=cpus, include_dashboard=False, _node_ip_address="127.0.0.1", log_to_driver=False,
                     runtime_env=runtime_env)
        else:
            ray.init(address=address, log_to_driver=False, runtime_env=runtime_env)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise UsageError(f"--ray-address {address}: cannot reach the Ray cluster ({str(exc).splitlines()[0]}); "
                         "start one with `ray start --head`, or leave --ray-address out for a local one") from None
    return True


def _ray_sweep_job(manifest: str, index: int, runs_dir: str) -> dict[str, Any]:
    return run_sweep_job(manifest, index, runs_dir, handle_interrupt=True)


class RayExecutor:
    """Runs each job as a Ray task (one CPU), retried by Ray when its worker dies.

    Args:
        workers: CPUs of the local Ray instance started when ``address`` is None.
        address: the Ray cluster to join, or None.
        retries: Ray's ``max_retries`` for a task whose worker died.
    """

    def __init__(self, workers: int, address: str | None, retries: int) -> None:
        self.workers, self.address, self.retries = workers, address, retries

    def run(self, jobs: list[SweepJob], manifest: Path, root: Path, notify: Notify) -> Iterator[SweepOutcome]:
        """Run the jobs; yields each outcome as its job ends. Ctrl-C cancels the tasks gracefully (a SIGINT in
        each worker: partial results) and raises KeyboardInterrupt once they have ended."""
        import ray

        started = init_ray(self.address, self.workers)
        task = ray.remote(_ray_sweep_job).options(num_cpus=1, max_retries=self.retries, retry_exceptions=False)
        try:
            refs: dict[Any, SweepJob] = {}
            for job in jobs:
                _clear(manifest, job.index)
                refs[task.remote(str(manifest), job.index, str(root))] = job
                notify("start", job, None)
            try:
                while refs:
                    ready, _ = ray.wait(list(refs), num_returns=1, timeout=0.5)
                    for ref in ready:
                        job = refs.pop(ref)
                        outcome = self._outcome(ray, ref, job, manifest)
                        notify("done", job, outcome)
                        yield outcome
            except KeyboardInterrupt:
                for ref in refs:
                    with contextlib.suppress(Exception):
                        ray.cancel(ref)
                with contextlib.suppress(Exception):
                    ray.wait(list(refs), num_returns=len(refs), timeout=60)
                raise
        finally:
            if started:
                ray.shutdown()

    def _outcome(self, ray: Any, ref: Any, job: SweepJob, manifest: Path) -> SweepOutcome:
        try:
            return SweepOutcome.model_validate(ray.get(ref))  # it counted its attempts (run_sweep_job)
        except ray.exceptions.RayError as exc:
            attempts = _attempts(manifest, job.index)
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            return SweepOutcome(index=job.index, run_id=job.run_id, state="failed", attempts=attempts,
                                error=f"Ray: {type(exc).__name__}: {first} (after {attempts} attempt(s))")


def _ray_service_job(job_id: str, runs_dir: str) -> int:
    from optimizer.service.worker import main

    return main([job_id, runs_dir], watch_parent_process=False)


class RayLauncher:
    """Starts ``apo serve`` jobs as Ray tasks; the scheduler polls, interrupts and kills them through handles.

    Args:
        address: the Ray cluster to join, or None for a local instance.
        cpus: CPUs of a local instance.
        retries: restarts of a job whose Ray worker died (it resumes from its journal).
    """

    def __init__(self, address: str | None, cpus: int, retries: int = 2) -> None:
        self.started = init_ray(address, cpus)
        import ray

        self._ray = ray
        self._task = ray.remote(_ray_service_job).options(num_cpus=1, max_retries=retries, retry_exceptions=False)

    def launch(self, job_id: str, runs_dir: Path) -> RayHandle:
        """Start one job."""
        return RayHandle(self._ray, self._task.remote(job_id, str(runs_dir)))

    def shutdown(self) -> None:
        """Stop a local Ray instance this launcher started (its tasks die; their jobs resume on the next start)."""
        if self.started:
            self._ray.shutdown()


class RayHandle:
    """One job's Ray task, with the calls of a worker process the scheduler makes (``poll``, ``send_signal``,
    ``kill``, ``wait``)."""

    def __init__(self, ray: Any, ref: Any) -> None:
        self._ray, self.ref = ray, ref
        self.error: str | None = None

    def poll(self) -> int | None:
        """The task's exit code once it ended (1 when Ray gave up on it), else None."""
        ready, _ = self._ray.wait([self.ref], timeout=0)
        if not ready:
            return None
        try:
            return int(self._ray.get(self.ref))
        except self._ray.exceptions.RayError as exc:
            self.error = f"Ray: {type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"
            return 1

    def send_signal(self, _signal: int) -> None:
        """A graceful stop: Ray raises SIGINT in the task's worker."""
        with contextlib.suppress(Exception):
            self._ray.cancel(self.ref)

    def kill(self) -> None:
        """Stop the task at once."""
        with contextlib.suppress(Exception):
            self._ray.cancel(self.ref, force=True)

    def wait(self, timeout: float | None = None) -> None:
        """Wait up to ``timeout`` seconds for the task to end."""
        self._ray.wait([self.ref], timeout=timeout)


def main(argv: list[str] | None = None) -> int:
    """``python -m optimizer.service.executors MANIFEST INDEX RUNS_DIR``: one sweep job in this process."""
    from optimizer.service.worker import watch_parent

    manifest, index, runs = argv if argv is not None else sys.argv[1:]
    watch_parent()
    outcome = run_sweep_job(manifest, int(index), runs)
    return 1 if outcome["state"] == "failed" else 0


if __name__ == "__main__":
    sys.exit(main())
