"""argparse types of apo's options (counts, positive numbers and lists, each refusing bad values with a message), and
the global options every subcommand takes after its name."""

from __future__ import annotations

import argparse

__all__ = ["count", "global_options_everywhere", "int_list", "int_list_or_none", "positive", "positive_float"]


def positive(text: str) -> int:
    """An argparse type: a whole number of at least 1."""
    value = _whole(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of at least 1")
    return value


def count(text: str) -> int:
    """An argparse type: a whole number of at least 0."""
    value = _whole(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} is negative; give 0 or more")
    return value


def positive_float(text: str) -> float:
    """An argparse type: a number above 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} must be a number above 0")
    return value


def _whole(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None


def int_list(text: str) -> list[int]:
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated whole numbers such as 1,2,4, got {text!r}") \
            from None


def int_list_or_none(text: str) -> list[int]:
    """``int_list``, or an empty list for ``none``."""
    return [] if text.strip().lower() == "none" else int_list(text)


def global_options_everywhere(parser: argparse.ArgumentParser) -> None:
    """Let every subcommand, at any depth, take ``--runs-dir`` and ``--debug`` after its name as well (``apo optimize T
    --runs-dir D``, ``apo runs list --runs-dir D``, as well as ``apo --runs-dir D optimize T``). Given there, they
    override the same option given before the command; not given, they leave it as it was."""
    for action in parser._actions:
        if not isinstance(action, argparse._SubParsersAction):
            continue
        for command in action.choices.values():
            names = {name for a in command._actions for name in a.option_strings}
            if "--runs-dir" not in names:
                command.add_argument("--runs-dir", default=argparse.SUPPRESS,
                                     help="where runs are written (default: $APO_RUNS_DIR or ./runs)")
            if "--debug" not in names:
                command.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                                     help="print the Python traceback of an error (also APO_DEBUG=1)")
            global_options_everywhere(command)
