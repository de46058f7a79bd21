"""Exceptions raised by apo, each carrying a message a user can act on."""

from __future__ import annotations

__all__ = [
    "ApoError",
    "BudgetExceeded",
    "CapabilityError",
    "ModelUnavailable",
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


class ModelUnavailable(ApoError):
    """A model could not be fetched or loaded; the message says how to provide it by hand."""


class BudgetExceeded(ApoError):
    """Raised inside the engine when the next model call would exceed the run's budget."""

    def __init__(self, what: str, used: float, limit: float, note: str | None = None) -> None:
        super().__init__(f"budget reached: {what} used {used:g} of {limit:g}" + (f" ({note})" if note else ""))
        self.what = what
        self.used = used
        self.limit = limit
