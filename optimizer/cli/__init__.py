"""The ``apo`` command line (entry point :func:`optimizer.cli.main.main`).

Modules: ``parser`` (every subcommand and option), ``jobs`` (optimize, resume, eval), ``runs``
(runs, leaderboard), ``resources`` (tasks, models, cache), ``render`` (terminal output). They call
only the public API: :mod:`optimizer`, :mod:`optimizer.api`, :mod:`optimizer.config` and
:mod:`optimizer.errors`.
"""
