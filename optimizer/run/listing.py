"""What ``apo runs list`` and ``apo runs show`` say about a run folder: :class:`RunInfo`, :class:`RunDetails`."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

from optimizer.report.build import LineageStep, WrongExamples
from optimizer.run.store import DamagedRun, RunStore

__all__ = ["RunDetails", "RunInfo", "run_info_of"]

_DOCS = ConfigDict(use_attribute_docstrings=True)


class RunInfo(BaseModel):
    """One run folder: its stored configuration and, once it finished, its result."""

    model_config = _DOCS

    id: str
    """The run id (its folder name)."""
    path: str
    """The run folder."""
    config: dict[str, Any]
    """The configuration as stored in ``config.json`` (runs written before a rename keep the old names)."""
    result: dict[str, Any] | None
    """``result.json`` as stored, or None while the run has not finished (interrupted or running)."""
    holder: int | None = None
    """The PID of the process working on the run now (it holds the run's lock), or None."""
    error: str | None = None
    """Why the run's files cannot be read (then ``result`` is None); the message says the fix."""

    @property
    def status(self) -> str:
        """``running`` (a process holds its lock), else ``damaged`` (a file cannot be read), ``complete``,
        ``partial`` (stopped by the budget) or ``interrupted`` (stopped by Ctrl-C, or no result: killed)."""
        if self.holder is not None:
            return "running"
        if self.error:
            return "damaged"
        return str(self.result.get("status", "?")) if self.result else "interrupted"


class RunDetails(RunInfo):
    """A run with what ``apo runs show`` prints about it."""

    scores: int
    """Score records in the run's log."""
    lineage: list[LineageStep]
    """The best prompt's ancestry, from a proposal to the winner (empty without a result)."""
    wrong: WrongExamples | None
    """The test examples the best prompt gets wrong (None before the test evaluation)."""


def run_info_of(store: RunStore, tolerant: bool = False) -> RunInfo:
    """A run folder's configuration, result and lock holder.

    Args:
        store: the run.
        tolerant: give an entry with ``error`` set for a damaged config.json instead of raising (a damaged
            result.json always gives ``error`` and no result: ``apo resume`` rebuilds it).

    Returns:
        Its :class:`RunInfo`.

    Raises:
        DamagedRun: config.json cannot be read and ``tolerant`` is false.
    """
    try:
        config = store.read_config().get("config", {})
    except DamagedRun as exc:
        if not tolerant:
            raise
        return RunInfo(id=store.id, path=str(store.path), config={}, result=None, holder=store.holder,
                       error=str(exc))
    try:
        result, error = store.read_result(), None
    except DamagedRun as exc:
        result, error = None, str(exc)
    return RunInfo(id=store.id, path=str(store.path), config=config if isinstance(config, dict) else {},
                   result=result, holder=store.holder, error=error)
