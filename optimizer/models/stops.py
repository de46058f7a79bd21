"""Stop strings: where a generation ends, decided in one place for every provider.

Servers differ in whether they apply stop strings (and some cannot take every string, such as
Anthropic's refusal of whitespace-only ones), and local generation checks them only between
tokens, so every adapter cuts its text here as well.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["cut_at_stop", "first_stop"]


def first_stop(text: str, stop: Iterable[str]) -> int | None:
    """Where the earliest stop string starts in ``text``.

    Args:
        text: the generated text.
        stop: the stop strings; empty strings are ignored.

    Returns:
        The index of the earliest occurrence of any stop string, or None when none occurs.
    """
    found = [at for at in (text.find(s) for s in stop if s) if at != -1]
    return min(found) if found else None


def cut_at_stop(text: str, stop: Iterable[str]) -> str:
    """Cut ``text`` at the earliest occurrence of any stop string.

    Args:
        text: the generated text.
        stop: the stop strings; empty strings are ignored.

    Returns:
        ``text`` up to, not including, the first stop string found (all of it when none occurs).
    """
    at = first_stop(text, stop)
    return text if at is None else text[:at]
