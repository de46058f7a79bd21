"""The run store: ``runs/<id>/`` with config.json, events.jsonl (append-only) and result.json.

Every event is one JSON line, written with a single ``write`` and flushed with fsync, so a job
killed at any moment leaves a readable log (at worst a torn last line, which is ignored).
``result.json`` and ``config.json`` are written atomically (temporary file + rename).
"""

from __future__ import annotations

import json
import os
import secrets
import time
from collections.abc import Iterator
from pathlib import Path

__all__ = ["RunStore", "runs_dir", "write_json_atomic"]

SCHEMA_VERSION = 1


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
        self._fh = None

    @classmethod
    def create(cls, root: str | Path | None, task_name: str) -> "RunStore":
        """Make a new, empty run folder named ``<date>-<time>-<task>-<random>``."""
        root = runs_dir(root)
        root.mkdir(parents=True, exist_ok=True)
        safe = "".join(c if c.isalnum() or c in "-_" else "-" for c in task_name)[:40]
        run_id = f"{time.strftime('%Y%m%d-%H%M%S')}-{safe}-{secrets.token_hex(2)}"
        path = root / run_id
        path.mkdir()
        return cls(path)

    @classmethod
    def open(cls, root: str | Path | None, run_id: str) -> "RunStore":
        """An existing run, by id (or by a path to its folder)."""
        candidate = Path(run_id)
        path = candidate if (candidate / "config.json").exists() else runs_dir(root) / run_id
        if not (path / "config.json").exists():
            from optimizer.errors import UsageError

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
        """config.json as data."""
        return json.loads(self.config_path.read_text(encoding="utf-8"))

    def write_result(self, data: dict) -> None:
        """Write result.json atomically."""
        write_json_atomic(self.result_path, {"schema": SCHEMA_VERSION, **data})

    def read_result(self) -> dict | None:
        """result.json as data, or None when the run has not finished one."""
        if not self.result_path.exists():
            return None
        return json.loads(self.result_path.read_text(encoding="utf-8"))

    def append(self, *events: dict) -> None:
        """Append events (each gets a ``t`` timestamp) in one write, then fsync."""
        if not events:
            return
        if self._fh is None:
            self._fh = open(self.events_path, "a", encoding="utf-8")
        now = round(time.time(), 3)
        text = "".join(json.dumps({"t": now, **e}, ensure_ascii=False) + "\n" for e in events)
        self._fh.write(text)
        self._fh.flush()
        os.fsync(self._fh.fileno())

    def events(self) -> Iterator[dict]:
        """Every complete event in order; a torn last line (from a kill) is skipped."""
        if not self.events_path.exists():
            return
        with open(self.events_path, encoding="utf-8") as fh:
            for line in fh:
                if not line.endswith("\n"):
                    break
                try:
                    yield json.loads(line)
                except json.JSONDecodeError:
                    break

    def repair(self) -> None:
        """Cut a torn last line left by a kill, so that appends start on a fresh line."""
        if not self.events_path.exists():
            return
        data = self.events_path.read_bytes()
        if data and not data.endswith(b"\n"):
            cut = data.rfind(b"\n") + 1
            with open(self.events_path, "r+b") as fh:
                fh.truncate(cut)

    def close(self) -> None:
        """Close the event log."""
        if self._fh is not None:
            self._fh.close()
            self._fh = None
