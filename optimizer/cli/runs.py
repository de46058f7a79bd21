"""``apo runs`` and ``apo leaderboard``: reading finished and stopped runs, through :mod:`optimizer.api`."""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console

from optimizer import api, build_leaderboard
from optimizer.cli.render import check_output_file, out, render_candidates, render_result, render_runs

__all__ = ["cmd_leaderboard", "cmd_runs"]


def cmd_runs(args: argparse.Namespace) -> int:
    """apo runs list|show."""
    if args.action == "list":
        render_runs(api.list_runs(args.runs_dir), api.runs_folder(args.runs_dir))
        return 0
    run = api.show_run(args.run_id, args.runs_dir)
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
