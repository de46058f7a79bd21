"""Exceptions raised by apo, each carrying a message a user can act on."""

from __future__ import annotations

__all__ = [
    "ApoError",
    "BudgetExceeded",
    "CapabilityError",
    "Interrupted",
    "ModelUnavailable",
    "RunAborted",
    "RunLockedError",
    "ServiceError",
    "TaskError",
    "UsageError",
]


class ApoError(Exception):
    """Base class of every error apo raises on purpose."""


class UsageError(ApoError):
    """Bad input from the user: a wrong option, a malformed task file. The CLI exits with 2."""


class TaskError(UsageError):
    """A task file or task data is malformed. The message names the file, the field and the fix."""


class CapabilityError(UsageError):
    """The chosen model cannot do what the searcher or scorer needs (e.g. log-probabilities)."""


class RunLockedError(UsageError):
    """Another process holds the run's lock (it is being optimized, resumed or repaired). The CLI exits with 2."""

    def __init__(self, message: str, pid: int | None = None) -> None:
        super().__init__(message)
        self.pid = pid
        """The PID of the process holding the lock, when known."""


class ServiceError(UsageError):
    """A request an apo server refused (a 4xx: a bad job, a wrong token, an unknown or unfinished job), with the
    server's message. The CLI exits with 2."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status
        """The HTTP status code."""


class ModelUnavailable(ApoError):
    """A model could not be fetched or loaded; the message says how to provide it by hand."""


class BudgetExceeded(ApoError):
    """Raised inside the engine when the next model call would exceed the run's budget."""

    def __init__(self, what: str, used: float, limit: float, note: str | None = None) -> None:
        super().__init__(f"budget reached: {what} used {used:g} of {limit:g}" + (f" ({note})" if note else ""))
        self.what = what
        self.used = used
        self.limit = limit


class Interrupted(ApoError):
    """Raised inside the engine, in place of the next model call, once a stop was asked for (a first Ctrl-C).

    The engine turns it into a result with status ``interrupted`` from what was scored so far; it
    does not escape :func:`optimizer.optimize` or :func:`optimizer.resume`.
    """


class RunAborted(KeyboardInterrupt):
    """A run stopped at once (a second Ctrl-C, or a KeyboardInterrupt inside it); no result was written.

    A ``KeyboardInterrupt``, so code that catches that still does; ``run_id`` names the run that
    ``apo resume`` continues.
    """

    def __init__(self, run_id: str) -> None:
        super().__init__(run_id)
        self.run_id = run_id
        """The interrupted run's id."""
