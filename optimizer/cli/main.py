"""The ``apo`` command line: thin parsing and printing over the public API (:mod:`optimizer.api`)."""

from __future__ import annotations

import errno
import importlib
import os
import sqlite3
import sys
import traceback

from optimizer.cli.parser import build_parser
from optimizer.errors import ApoError, ModelUnavailable, UsageError

__all__ = ["main"]

COMMANDS = {"optimize": "jobs", "resume": "jobs", "eval": "jobs", "runs": "runs", "leaderboard": "runs",
            "export": "export", "tasks": "resources", "models": "resources", "cache": "resources",
            "serve": "service", "submit": "service", "jobs": "service", "sweep": "sweep",
            "compare": "sweep"}
"""The module of ``optimizer.cli`` that runs each subcommand (imported only when it runs, so help stays light)."""


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``apo`` and ``python -m optimizer``.

    Args:
        argv: the arguments (default: ``sys.argv[1:]``).

    Returns:
        The exit code: 0, 1 (an error apo raised, or `apo eval --from-run` not reproducing the run's score),
        2 (bad input: options, files, folders apo cannot use), 3 (a model unavailable), 130 (interrupted).
        No traceback is printed for any of these; ``--debug`` (or ``APO_DEBUG=1``) prints it.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    if not args.command:
        parser.print_help()
        return 2
    debug = bool(getattr(args, "debug", False) or os.environ.get("APO_DEBUG"))
    try:
        module = importlib.import_module(f"optimizer.cli.{COMMANDS[args.command]}")
        return getattr(module, f"cmd_{args.command}")(args)
    except UsageError as exc:
        return _fail("error", str(exc), 2, debug)
    except ModelUnavailable as exc:
        return _fail("model unavailable", str(exc), 3, debug)
    except ApoError as exc:
        return _fail("error", str(exc), 1, debug)
    except OSError as exc:
        return _fail("error", describe_os_error(exc), 2, debug)
    except sqlite3.DatabaseError as exc:
        return _fail("error", f"a database apo uses cannot be read ({exc}); if it is the response cache, "
                     "`apo cache clear` recreates it", 2, debug)
    except KeyboardInterrupt as exc:
        run_id = getattr(exc, "run_id", None)  # a RunAborted: the run folder existed
        if run_id:
            _print_error("interrupted", f"continue with `apo resume {run_id}`")
        else:
            _print_error("interrupted", "before the run started; nothing was recorded" if args.command == "optimize"
                         else "nothing was changed")
        return 130
    except Exception as exc:  # a bug: one line, the traceback only on request
        return _fail("internal error", f"{type(exc).__name__}: {exc} (this is a bug in apo; rerun with --debug to "
                     "see the traceback, and report it)", 1, debug)


def _print_error(label: str, message: str) -> None:
    """One error on stderr as plain text: never parsed as console markup or emoji codes."""
    from rich.console import Console
    from rich.text import Text

    Console(stderr=True, markup=False, emoji=False, highlight=False, soft_wrap=True).print(
        Text.assemble((f"{label}: ", "red"), message))


def _fail(label: str, message: str, code: int, debug: bool) -> int:
    if debug:
        traceback.print_exc()
    _print_error(label, message)
    return code


def describe_os_error(exc: OSError) -> str:
    """A filesystem error as what failed, where, and what to do."""
    where = " -> ".join(str(f) for f in (exc.filename, exc.filename2) if f is not None) or "a file"
    reason = exc.strerror or str(exc)
    fixes = {
        errno.EACCES: "check the permissions, or choose another folder (--runs-dir / APO_RUNS_DIR for runs, "
                      "APO_CACHE_DIR for the cache)",
        errno.EPERM: "check the permissions, or choose another folder (--runs-dir / APO_RUNS_DIR for runs, "
                     "APO_CACHE_DIR for the cache)",
        errno.EEXIST: "a file is in the way where apo needs a folder; move it or choose another path",
        errno.ENOTDIR: "a file is in the way where apo needs a folder; move it or choose another path",
        errno.EISDIR: "that path is a folder; give a file path",
        errno.ENOENT: "check the path",
        errno.ENOSPC: "free some disk space; a stopped job continues with `apo resume RUN_ID`",
        errno.EROFS: "the filesystem is read-only; choose another folder",
    }
    fix = fixes.get(exc.errno or 0, "check the path and try again")
    return f"{where}: {reason}; {fix}"


if __name__ == "__main__":
    sys.exit(main())
