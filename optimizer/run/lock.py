"""One process at a time per run: an exclusive lock on ``runs/<id>/.lock``.

``apo optimize`` (while it runs), ``apo resume`` and ``apo runs repair`` hold it. It is an
``fcntl.flock`` lock, so the operating system releases it when its holder dies, even by SIGKILL:
a stale lock file never blocks a resume. The holder writes its PID into the file so that a
refused process can name it. Where ``fcntl`` is missing (Windows) runs are not locked.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import IO

from optimizer.errors import RunLockedError

try:
    import fcntl
except ImportError:  # pragma: no cover - not on POSIX
    fcntl = None  # type: ignore[assignment]

__all__ = ["LOCK_NAME", "RunLock", "lock_holder"]

LOCK_NAME = ".lock"
"""The lock file's name inside a run folder."""


class RunLock:
    """The exclusive lock of one run folder.

    Example::

        lock = RunLock(run_dir)
        lock.acquire()      # raises RunLockedError naming the holder's PID when another process has it
        try:
            ...
        finally:
            lock.release()

    Args:
        run_dir: the run folder.
    """

    def __init__(self, run_dir: str | Path) -> None:
        self.path = Path(run_dir) / LOCK_NAME
        self._fh: IO[str] | None = None

    @property
    def held(self) -> bool:
        """Whether this object holds the lock."""
        return self._fh is not None

    def acquire(self) -> None:
        """Take the lock without waiting and write this process's PID into the lock file.

        Raises:
            RunLockedError: another process (or another lock object of this one) holds it.
        """
        if self._fh is not None or fcntl is None:
            return
        fh = open(self.path, "a+", encoding="utf-8")  # not "w": the holder's PID must survive a refused attempt
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            fh.close()
            pid = lock_holder(self.path.parent)
            who = f"process {pid}" if pid else "another process"
            raise RunLockedError(
                f"run {self.path.parent.name} is in use by {who} (an `apo optimize` or `apo resume` of it is "
                f"running); wait for it to finish, or stop it (Ctrl-C, or `kill {pid or 'PID'}`) and resume again",
                pid=pid) from None
        fh.seek(0)
        fh.truncate()
        fh.write(f"{os.getpid()}\n")
        fh.flush()
        self._fh = fh

    def release(self) -> None:
        """Give the lock up (closing the file releases it); the file stays, harmless."""
        if self._fh is not None:
            fh, self._fh = self._fh, None
            fh.close()


def lock_holder(run_dir: str | Path) -> int | None:
    """The PID of the process holding a run's lock, or None when nobody holds it.

    Args:
        run_dir: the run folder.

    Returns:
        The holder's PID (0 when the lock is held but the file names no PID yet), or None.
    """
    path = Path(run_dir) / LOCK_NAME
    if fcntl is None or not path.exists():
        return None
    try:
        with open(path, encoding="utf-8") as fh:
            try:
                fcntl.flock(fh.fileno(), fcntl.LOCK_SH | fcntl.LOCK_NB)
            except OSError:
                text = fh.read().strip()
                return int(text) if text.isdigit() else 0
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
            return None
    except OSError:
        return None
