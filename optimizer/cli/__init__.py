"""The ``apo`` command line; :func:`main` is its entry point.

Modules: ``parser`` (every subcommand and option), ``jobs`` (optimize, resume, eval), ``runs``
(runs, leaderboard), ``resources`` (tasks, models, cache), ``render`` (terminal output), ``main``
(dispatch and exit codes). They call only the public API: :mod:`optimizer`, :mod:`optimizer.api`,
:mod:`optimizer.config` and :mod:`optimizer.errors`.
"""

from optimizer.cli.main import main

__all__ = ["main"]
