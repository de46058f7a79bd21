"""The run store: ``runs/<id>/`` with config.json, events.jsonl (the :class:`~optimizer.run.events.RunLog`)
and result.json.

``result.json`` and ``config.json`` are written atomically (temporary file + rename) and carry
the schema version, checked when a run is opened. A process working on the run holds its lock
(:mod:`optimizer.run.lock`) from :meth:`RunStore.lock` to :meth:`RunStore.close`.
"""

from __future__ import annotations

import json
import os
import secrets
import time
from pathlib import Path

from optimizer.errors import UsageError
from optimizer.run.events import SCHEMA_VERSION, RunLog, RunLogError, SessionStarted, check_schema
from optimizer.run.lock import RunLock, lock_holder

__all__ = ["DamagedRun", "RunStore", "runs_dir", "write_json_atomic"]


class DamagedRun(UsageError):
    """A run's config.json or result.json cannot be read; the message names the file and the fix."""


def runs_dir(path: str | Path | None = None) -> Path:
    """Where runs go: ``path``, else ``$APO_RUNS_DIR``, else ``./runs``."""
    return Path(path or os.environ.get("APO_RUNS_DIR") or "runs")


def write_json_atomic(path: Path, data: object) -> None:
    """Write JSON to ``path`` through a temporary file and a rename."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(data, fh, indent=2, ensure_ascii=False, sort_keys=False)
        fh.write("\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


class RunStore:
    """One run's folder.

    Args:
        path: the run folder (``runs/<id>``).
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.id = self.path.name
        self.log = RunLog(self.events_path)
        self._lock = RunLock(self.path)

    @classmethod
    def create(cls, root: str | Path | None, task_name: str, run_id: str | None = None) -> RunStore:
        """Make a new, empty run folder named ``<date>-<time>-<task>-<random>``, or ``run_id`` when given (a sweep
        names its jobs' runs up front; a folder of that name left without ``config.json`` by a job killed before
        it began is taken over)."""
        root = runs_dir(root)
        root.mkdir(parents=True, exist_ok=True)
        if run_id is None:
            safe = "".join(c if c.isalnum() or c in "-_" else "-" for c in task_name)[:40]
            run_id = f"{time.strftime('%Y%m%d-%H%M%S')}-{safe}-{secrets.token_hex(2)}"
        elif not run_id or not all(c.isalnum() or c in "-_." for c in run_id) or run_id.startswith("."):
            raise UsageError(f"run id {run_id!r}: use letters, digits, '-', '_' and '.' only")
        elif (root / run_id / "config.json").exists():
            raise UsageError(f"run {run_id} already exists in {root}/; continue it with `apo resume {run_id}`")
        path = root / run_id
        path.mkdir(exist_ok=run_id is not None)
        return cls(path)

    @classmethod
    def open(cls, root: str | Path | None, run_id: str) -> RunStore:
        """An existing run, by id (or by a path to its folder)."""
        candidate = Path(run_id)
        path = candidate if (candidate / "config.json").exists() else runs_dir(root) / run_id
        if not (path / "config.json").exists():
            raise UsageError(f"no run {run_id!r} under {runs_dir(root)}/ (see `apo runs list`)")
        return cls(path)

    @property
    def config_path(self) -> Path:
        """config.json."""
        return self.path / "config.json"

    @property
    def events_path(self) -> Path:
        """events.jsonl."""
        return self.path / "events.jsonl"

    @property
    def result_path(self) -> Path:
        """result.json."""
        return self.path / "result.json"

    def write_config(self, data: dict) -> None:
        """Write config.json atomically."""
        write_json_atomic(self.config_path, {"schema": SCHEMA_VERSION, **data})

    def read_config(self) -> dict:
        """config.json as data (its schema checked)."""
        data = _read_json(self.config_path)
        check_schema(data.get("schema"), str(self.config_path))
        return data

    def write_result(self, data: dict) -> None:
        """Write result.json atomically."""
        write_json_atomic(self.result_path, {"schema": SCHEMA_VERSION, **data})

    def read_result(self) -> dict | None:
        """result.json as data, or None when the run has not finished one."""
        if not self.result_path.exists():
            return None
        data = _read_json(self.result_path)
        check_schema(data.get("schema"), str(self.result_path))
        return data

    def lock(self) -> None:
        """Hold the run's exclusive lock until :meth:`close`.

        Raises:
            RunLockedError: another process holds it (the message names its PID).
        """
        self._lock.acquire()

    @property
    def holder(self) -> int | None:
        """The PID of the process holding the run's lock (this one's when it holds it), or None."""
        return os.getpid() if self._lock.held else lock_holder(self.path)

    @property
    def run_id(self) -> str:
        """The run's own id, as recorded in config.json (the folder name when missing or the folder was renamed
        later; the recorded one wins)."""
        try:
            return str(self.read_config().get("run_id") or self.id)
        except UsageError:
            return self.id

    def check_log(self) -> None:
        """Read the whole log once, refusing a damaged one and one that belongs to another run.

        Raises:
            RunLogError: a damaged line (its number and the repair command in the message), or a session event
                naming another run (an events.jsonl copied in from elsewhere).
        """
        expected = self.run_id
        for event in self.log.replay():
            if isinstance(event, SessionStarted) and event.run_id is not None and event.run_id != expected:
                raise RunLogError(
                    f"{self.events_path} belongs to run {event.run_id}, not to {expected} (config.json): it was "
                    "copied in from another run. Put this run's own events.jsonl back, or start a new run; a run's "
                    "log cannot be resumed under another run's configuration")

    def close(self) -> None:
        """Close the event log and release the run's lock (if held)."""
        self.log.close()
        self._lock.release()


def _read_json(path: Path) -> dict:
    if path.name == "result.json":
        fix = f"fix: `apo resume {path.parent.name}` rebuilds it from the run's journal"
    else:
        fix = "the run cannot be resumed or reported; fix: restore the file, or delete the run's folder"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DamagedRun(f"{path} cannot be read as JSON ({exc}); {fix}") from None
    if not isinstance(data, dict):
        raise DamagedRun(f"{path} holds a JSON {type(data).__name__}, not an object; {fix}")
    return data
