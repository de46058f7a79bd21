"""``apo sweep SWEEP.yaml`` and ``apo compare TASK``: run a sweep's jobs (a comparison is one) and print their
outcomes and the leaderboard of its runs (with a comparison's learning curves)."""

from __future__ import annotations

import argparse
import json
import threading
from collections.abc import Callable
from typing import Any

from rich.console import Console

from optimizer.api import leaderboard_text, print_leaderboard
from optimizer.cli.render import out
from optimizer.errors import UsageError

__all__ = ["cmd_compare", "cmd_sweep", "parse_settings", "parse_sizes"]


def _run(args: argparse.Namespace, command: str, again: str, start: Callable[..., Any]) -> int:
    """Run ``start(on_event=, on_plan=)`` (a sweep) with progress lines; exit 0 when every job finished (complete
    or partial), 1 when one failed, 130 on Ctrl-C (``again`` is the command that continues)."""
    console = Console(stderr=True, markup=False, emoji=False, highlight=False, soft_wrap=True)
    lock = threading.Lock()
    plan: dict[str, Any] = {"id": None, "total": 0, "ended": 0}

    def on_plan(sweep_id: str, jobs: list[Any]) -> None:
        plan.update(id=sweep_id, total=len(jobs))
        where = f" ({args.ray_address})" if args.ray_address else f", {args.workers} at once"
        console.print(f"apo {command}: {sweep_id}: {len(jobs)} job(s), executor {args.executor}{where}")

    def on_event(kind: str, job: Any, outcome: Any) -> None:
        if kind != "done" or outcome is None:
            return
        with lock:
            plan["ended"] += 1
            extra = f" after {outcome.attempts} attempts" if outcome.attempts > 1 else ""
            kept = " (already finished)" if outcome.attempts == 0 else ""
            why = f": {outcome.error}" if outcome.error else ""
            console.print(f"[{plan['ended']}/{plan['total']}] job {job.index} {job.describe()}: {outcome.state}{kept}"
                          f"{extra} (run {outcome.run_id}){why}")

    try:
        result = start(on_event=on_event, on_plan=on_plan)
    except KeyboardInterrupt:
        if plan["id"] is None:
            raise
        console.print(f"interrupted: the jobs in flight kept partial results; run `{again}` again to continue "
                      f"sweep {plan['id']}")
        return 130
    states = [o.state for o in result.outcomes]
    if args.json:
        print(result.model_dump_json(indent=2))
    else:
        if result.leaderboard is not None:
            print_leaderboard(result.leaderboard, out)
            if command == "compare":
                out.print(leaderboard_text(result.leaderboard, "curves"), markup=False, highlight=False)
        counts = ", ".join(f"{states.count(s)} {s}" for s in ("complete", "partial", "interrupted", "failed")
                           if s in states)
        out.print(f"{command} {result.sweep_id}: {counts} in {result.seconds:.0f} s; jobs and logs in {result.folder}"
                  + (f"; report {result.report}" if result.report else ""))
    return 1 if "failed" in states else 130 if "interrupted" in states else 0


def cmd_sweep(args: argparse.Namespace) -> int:
    """apo sweep."""
    from optimizer import sweep

    return _run(args, "sweep", f"apo sweep {args.sweep_file}", lambda **hooks: sweep(
        args.sweep_file, executor=args.executor, workers=args.workers, ray_address=args.ray_address,
        retries=args.retries, runs_dir=args.runs_dir, data_dir=args.data_dir, new=args.new, **hooks))


def parse_sizes(text: str) -> list[int | None]:
    """``8,32,all`` → [8, 32, None]."""
    sizes: list[int | None] = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        if part == "all":
            sizes.append(None)
        elif part.isdigit() and int(part) > 0:
            sizes.append(int(part))
        else:
            raise UsageError(f"--sizes {text}: {part!r} is not a training size; give positive numbers or 'all', "
                             "comma-separated (e.g. --sizes 8,32,128,all)")
    if not sizes:
        raise UsageError("--sizes: give at least one training size (e.g. --sizes 8,32,all)")
    return sizes


def parse_settings(items: list[str] | None) -> dict[str, Any]:
    """``--set KEY=VALUE`` options: VALUE read as JSON when it parses (numbers, true, lists), else as text."""
    settings: dict[str, Any] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--set {item}: give KEY=VALUE, e.g. --set steps=60 or --set test_limit=200")
        try:
            settings[key.strip().replace("-", "_")] = json.loads(value)
        except ValueError:
            settings[key.strip().replace("-", "_")] = value
    return settings


def cmd_compare(args: argparse.Namespace) -> int:
    """apo compare."""
    from optimizer import compare

    methods = [m for m in (args.methods or "").split(",") if m] or None
    try:
        seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    except ValueError:
        raise UsageError(f"--seeds {args.seeds}: give whole numbers, comma-separated (e.g. --seeds 0,1,2)") from None
    sizes, settings = parse_sizes(args.sizes), parse_settings(args.set)
    again = " ".join(["apo", *args.argv])
    return _run(args, "compare", again, lambda **hooks: compare(
        args.task, target=args.target, methods=methods, sizes=sizes, seeds=seeds, max_calls=args.max_calls,
        max_seconds=args.max_seconds, settings=settings, executor=args.executor, workers=args.workers,
        ray_address=args.ray_address, runs_dir=args.runs_dir, data_dir=args.data_dir, new=args.new, **hooks))
