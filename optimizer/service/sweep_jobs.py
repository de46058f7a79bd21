"""The jobs of a sweep and their outcomes (shared by the sweep's planner and its executors)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel

__all__ = ["SweepJob", "SweepOutcome", "read_outcome"]


class SweepJob(BaseModel):
    """One job of a sweep."""

    index: int
    """Its position in the sweep (0-based)."""
    run_id: str
    """The run that does it, named up front."""
    labels: dict[str, Any]
    """What sets it apart: task, target, searcher, seed and the grid's values."""
    config: dict[str, Any]
    """The validated :class:`~optimizer.config.RunConfig`, as JSON."""

    def describe(self) -> str:
        """``capitalize_words ape embedded seed 1 shots=3``."""
        extra = " ".join(f"{k}={v}" for k, v in self.labels.items() if k not in ("task", "target", "searcher", "seed"))
        return " ".join(filter(None, [self.labels["task"], self.labels["searcher"], self.labels["target"],
                                      f"seed {self.labels['seed']}", extra]))


class SweepOutcome(BaseModel):
    """How one job ended."""

    index: int
    run_id: str
    state: Literal["complete", "partial", "interrupted", "failed"]
    """``complete``; ``partial`` (stopped by its budget); ``interrupted`` (Ctrl-C: run the sweep again to
    continue); ``failed`` (``error`` says why)."""
    error: str | None = None
    attempts: int = 1
    """How many times a worker started on it in this invocation (more than 1: a killed worker was retried)."""


def read_outcome(job: SweepJob, runs_dir: Path) -> SweepOutcome | None:
    """A job's outcome when its run finished for good (its result complete or partial), else None."""
    try:
        status = json.loads((runs_dir / job.run_id / "result.json").read_text(encoding="utf-8")).get("status")
    except (OSError, ValueError, AttributeError):
        return None
    if status not in ("complete", "partial"):
        return None
    return SweepOutcome(index=job.index, run_id=job.run_id, state=status, attempts=0)
