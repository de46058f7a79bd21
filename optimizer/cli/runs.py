"""``apo runs`` and ``apo leaderboard``: reading finished and stopped runs, through :mod:`optimizer.api`."""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console

from optimizer import api, build_leaderboard
from optimizer.cli.render import check_output_file, out, render_candidates, render_result, render_runs
from optimizer.errors import UsageError

__all__ = ["cmd_leaderboard", "cmd_runs"]


def cmd_runs(args: argparse.Namespace) -> int:
    """apo runs list|show|repair."""
    if args.action == "list":
        render_runs(api.list_runs(args.runs_dir), api.runs_folder(args.runs_dir))
        return 0
    if args.action == "repair":
        return _repair(args)
    run = api.show_run(args.run_id, args.runs_dir)
    if run.error:
        raise UsageError(run.error)
    if run.result is None:
        out.print(f"run {run.id} has no result yet ({run.scores} scores recorded); `apo resume {run.id}` finishes it")
        return 0
    render_result(run.result)
    render_candidates(run.result)
    api.print_run_details(run, out)
    return 0


def cmd_leaderboard(args: argparse.Namespace) -> int:
    """apo leaderboard."""
    if args.out:
        check_output_file(args.out, "--out")
    board = build_leaderboard(args.paths or args.runs_dir, task=args.task, searcher=args.searcher, model=args.model)
    if args.format == "table":
        if args.out:
            with open(args.out, "w", encoding="utf-8") as fh:
                api.print_leaderboard(board, Console(file=fh, width=args.width or 200, color_system=None, markup=False,
                                                    emoji=False, highlight=False))
        else:
            api.print_leaderboard(board, Console(width=args.width, markup=False, emoji=False, highlight=False)
                                  if args.width else out)
        return 0
    text = api.leaderboard_text(board, args.format)
    if args.out:
        Path(args.out).write_text(text, encoding="utf-8")
        Console(stderr=True, markup=False, emoji=False, highlight=False).print(
            f"wrote {args.format} leaderboard ({len(board.rows)} rows) to {args.out}")
    else:
        print(text, end="")
    return 0


def _repair(args: argparse.Namespace) -> int:
    """apo runs repair: say what was cut, and where the original went."""
    rep = api.repair_run(args.run_id, args.runs_dir)
    if rep.first_bad_line is None:
        torn = "; cut a torn last line (a kill mid-write)" if rep.torn_last_line else ""
        out.print(f"run {rep.run_id}: events.jsonl has no damaged line ({rep.kept} lines){torn}; nothing to repair",
                  highlight=False, markup=False, soft_wrap=True)
        return 0
    out.print(f"run {rep.run_id}: line {rep.first_bad_line} of events.jsonl is damaged ({rep.error}); dropped "
              f"{rep.dropped} lines from line {rep.kept + 1} on (back to the end of the last whole batch), kept "
              f"{rep.kept}. The original is {rep.backup}. `apo resume {rep.run_id}` recomputes what was dropped.",
              highlight=False, markup=False, soft_wrap=True)
    return 0
