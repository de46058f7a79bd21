"""The run files' schema version and the errors of reading and writing a run's journal."""

from __future__ import annotations

from typing import Any

from optimizer.errors import ApoError, UsageError

__all__ = ["SCHEMA_VERSION", "JournalWriteError", "RunLogError", "check_schema"]

SCHEMA_VERSION = 2
"""The version written into ``config.json``, ``result.json`` and every session event.

1: the first release (short keys ``ih``, ``ex``, ``out``). 2: self-explaining keys, racing in its own config."""


class JournalWriteError(ApoError):
    """The run's journal could not be written (a full disk …); it was left whole, and the run resumes from it."""


class RunLogError(UsageError):
    """A run's files cannot be read as a run (corrupt line, unknown event, newer schema)."""

    line: int | None = None
    """The number of the first damaged line of ``events.jsonl``, when that is the problem."""


def check_schema(version: Any, where: str) -> None:
    """Refuse a run written by a newer apo.

    Args:
        version: the ``schema`` value found (missing means 1).
        where: the file, for the message.

    Raises:
        RunLogError: the schema is newer than this apo reads, or not a version number.
    """
    if version is None:
        return
    if not isinstance(version, int) or version < 1:
        raise RunLogError(f"{where}: schema {version!r} is not a schema version; the file is damaged")
    if version > SCHEMA_VERSION:
        raise RunLogError(f"{where} was written by a newer apo (schema {version}; this one reads up to "
                          f"{SCHEMA_VERSION}); upgrade apo to open it")
