"""The ``apo`` command line: thin parsing and printing over the public API (:mod:`optimizer.api`)."""

from __future__ import annotations

import importlib
import sys

from optimizer.cli.parser import build_parser
from optimizer.errors import ApoError, ModelUnavailable, UsageError

__all__ = ["main"]

COMMANDS = {"optimize": "jobs", "resume": "jobs", "eval": "jobs", "runs": "runs", "leaderboard": "runs",
            "export": "export", "tasks": "resources", "models": "resources", "cache": "resources"}
"""The module of ``optimizer.cli`` that runs each subcommand (imported only when it runs, so help stays light)."""


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``apo`` and ``python -m optimizer``.

    Args:
        argv: the arguments (default: ``sys.argv[1:]``).

    Returns:
        The exit code: 0, 1 (an error apo raised, or `apo eval --from-run` not reproducing the run's score),
        2 (bad input), 3 (a model unavailable), 130 (interrupted).
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return 2
    from rich.console import Console
    from rich.markup import escape

    err = Console(stderr=True)
    try:
        module = importlib.import_module(f"optimizer.cli.{COMMANDS[args.command]}")
        return getattr(module, f"cmd_{args.command}")(args)
    except UsageError as exc:
        err.print(f"[red]error:[/red] {escape(str(exc))}", highlight=False)
        return 2
    except ModelUnavailable as exc:
        err.print(f"[red]model unavailable:[/red] {escape(str(exc))}", highlight=False)
        return 3
    except ApoError as exc:
        err.print(f"[red]error:[/red] {escape(str(exc))}", highlight=False)
        return 1
    except KeyboardInterrupt as exc:
        run_id = getattr(exc, "run_id", None)  # a RunAborted: the run folder existed
        if run_id:
            err.print(f"interrupted; continue with `apo resume {run_id}`", highlight=False, markup=False,
                      soft_wrap=True)
        else:
            err.print("interrupted before the run started; nothing was recorded" if args.command == "optimize"
                      else "interrupted", highlight=False, markup=False, soft_wrap=True)
        return 130


if __name__ == "__main__":
    sys.exit(main())
