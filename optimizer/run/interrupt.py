"""Ctrl-C that keeps the work: the first SIGINT stops a run at the next model call, the second at once.

The first SIGINT only asks the run's ledger to stop (:meth:`~optimizer.models.client.Ledger.request_stop`):
calls already running finish and their scores are recorded, the next model call raises
:class:`~optimizer.errors.Interrupted`, and the engine writes a result with status ``interrupted``
from what was scored so far. A second SIGINT raises :class:`~optimizer.errors.RunAborted` (a
``KeyboardInterrupt``) wherever the process is; nothing half-written is left that a resume cannot
read (the log is append-only, results are written atomically).
"""

from __future__ import annotations

import os
import signal
import threading
from types import FrameType
from typing import Any

from optimizer.errors import RunAborted

__all__ = ["STOP_REASON", "StopOnInterrupt"]

STOP_REASON = "stopped by Ctrl-C"
"""The stop reason recorded in the result of a run stopped by SIGINT."""


class StopOnInterrupt:
    """A context manager that handles SIGINT for one run (only in the main thread; elsewhere it does nothing).

    Example::

        with StopOnInterrupt(ledger, store.id):
            searcher.run(ctx)   # a first Ctrl-C makes the next model call raise Interrupted

    Args:
        ledger: the run's ledger, asked to stop on the first SIGINT.
        run_id: the run, named by the RunAborted a second SIGINT raises.
    """

    reason: str = STOP_REASON
    """The stop reason recorded in the result (a process that stops runs by SIGINT for another reason, as the
    workers of ``apo serve`` do for a cancel, sets its own)."""

    def __init__(self, ledger: Any, run_id: str) -> None:
        self.ledger = ledger
        self.run_id = run_id
        self._previous: Any = None
        self._installed = False

    def __enter__(self) -> StopOnInterrupt:
        if threading.current_thread() is threading.main_thread():
            previous = signal.getsignal(signal.SIGINT)
            if previous is not signal.SIG_IGN:  # a process started with SIGINT ignored keeps ignoring it
                self._previous = previous
                signal.signal(signal.SIGINT, self._handle)
                self._installed = True
        return self

    def __exit__(self, *exc: object) -> None:
        if self._installed:
            signal.signal(signal.SIGINT, self._previous)
            self._installed = False

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.ledger.stop_reason is not None:
            raise RunAborted(self.run_id)
        self.ledger.request_stop(self.reason)
        try:  # os.write, not print or rich: safe whatever the main thread was doing
            os.write(2, b"\nstopping after the current batch and writing a partial result "
                        b"(Ctrl-C again to quit at once)\n")
        except OSError:
            pass
