"""``apo runs repair``: make a run whose ``events.jsonl`` has a damaged line resumable again, destroying nothing.

A torn last line (a kill mid-write) needs no repair: a resume cuts it. A damaged line before the end
(a disk fault, a hand edit) makes a resume refuse the run, since what follows it cannot be trusted.
The repair keeps the lines before it, back to the end of the last whole batch of events (its usage
snapshot, so that the usage figures a resume restores match the scores kept), moves the original
aside as ``events.jsonl.bak-<time>`` and writes the kept lines in its place; ``apo resume`` then
recomputes what was dropped (the response cache answers what was asked before).
"""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict, ValidationError

from optimizer.run.events import UsageSnapshot, parse_event
from optimizer.run.store import RunStore

__all__ = ["LogDamage", "LogRepairReport", "keep_first", "repair_log", "scan_log"]


@dataclass(frozen=True)
class LogDamage:
    """What :func:`scan_log` found."""

    good: int
    """Lines that can be kept: with a damaged line, those up to the last usage snapshot before it; else every
    complete line."""
    total: int
    """Lines in the file, a torn last one included."""
    line: int | None = None
    """The first complete line that is not an event, if any."""
    error: str | None = None
    """Why that line is not an event."""
    torn: bool = False
    """Whether the file ends in a torn line."""


def scan_log(path: Path) -> LogDamage:
    """Where a run log stops being readable.

    Args:
        path: the ``events.jsonl`` file.

    Returns:
        The first damaged line and what can be kept before it, and whether the file ends in a torn line.
    """
    lines = path.read_bytes().splitlines(keepends=True) if path.exists() else []
    torn = bool(lines) and not lines[-1].endswith(b"\n")
    complete = lines[:-1] if torn else lines
    boundary = 0
    for number, line in enumerate(complete, 1):
        try:
            event = parse_event(line)
        except ValidationError as exc:
            return LogDamage(good=boundary, total=len(lines), line=number, error=exc.errors()[0]["msg"], torn=torn)
        if isinstance(event, UsageSnapshot):
            boundary = number
    return LogDamage(good=len(complete), total=len(lines), torn=torn)


def keep_first(path: Path, lines: int, backup: Path) -> None:
    """Keep only the first ``lines`` lines of ``path``; the file as it was stays at ``backup``.

    The shortened file replaces the original in one rename, so a crash leaves one or the other.

    Args:
        path: the file.
        lines: complete lines to keep.
        backup: where the original goes (a new name in the same folder).
    """
    kept = b"".join(path.read_bytes().splitlines(keepends=True)[:lines])
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as fh:
        fh.write(kept)
        fh.flush()
        os.fsync(fh.fileno())
    try:
        os.link(path, backup)
    except OSError:  # a file system without hard links
        shutil.copy2(path, backup)
    os.replace(tmp, path)


class LogRepairReport(BaseModel):
    """What :func:`repair_log` (``apo runs repair``) did to a run's ``events.jsonl``."""

    model_config = ConfigDict(use_attribute_docstrings=True)

    run_id: str
    """The run."""
    lines: int
    """Lines the log had (a torn last one included)."""
    kept: int
    """Lines kept: those before the first damaged one, back to the end of the last whole batch of events."""
    first_bad_line: int | None
    """The first damaged line's number (None when no complete line was damaged)."""
    error: str | None
    """Why that line is not a run event."""
    torn_last_line: bool
    """Whether the log ended in a torn line (a kill mid-write), which was cut."""
    backup: str | None
    """Where the original log was kept (None when no complete line was dropped)."""

    @property
    def dropped(self) -> int:
        """Lines dropped, a torn last one included."""
        return self.lines - self.kept


def repair_log(store: RunStore) -> LogRepairReport:
    """Cut a run's log before its first damaged line, keeping the original as ``events.jsonl.bak-<time>``.

    A log without a damaged line is left as it is, a torn last line aside (cut, as a resume does). The run's
    lock is held meanwhile.

    Args:
        store: the run.

    Returns:
        What was kept and dropped, and where the original went.

    Raises:
        RunLockedError: another process is working on the run.
    """
    store.lock()
    try:
        store.log.close()
        damage = scan_log(store.events_path)
        backup = None
        if damage.line is None:
            store.log.repair()
        else:
            stamp = time.strftime("%Y%m%d-%H%M%S")
            backup = store.path / f"{store.events_path.name}.bak-{stamp}"
            n = 1
            while backup.exists():
                n += 1
                backup = store.path / f"{store.events_path.name}.bak-{stamp}-{n}"
            keep_first(store.events_path, damage.good, backup)
    finally:
        store.close()
    kept = damage.good if damage.line is not None else damage.total - int(damage.torn)
    return LogRepairReport(run_id=store.id, lines=damage.total, kept=kept, first_bad_line=damage.line,
                           error=damage.error, torn_last_line=damage.torn, backup=str(backup) if backup else None)
