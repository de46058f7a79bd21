"""``apo sweep SWEEP.yaml``: run a sweep's jobs and print their outcomes and the leaderboard of its runs."""

from __future__ import annotations

import argparse
import threading
from typing import Any

from rich.console import Console

from optimizer import sweep
from optimizer.api import print_leaderboard
from optimizer.cli.render import out

__all__ = ["cmd_sweep"]


def cmd_sweep(args: argparse.Namespace) -> int:
    """apo sweep: exit 0 when every job finished (complete or partial), 1 when one failed, 130 on Ctrl-C."""
    console = Console(stderr=True, markup=False, emoji=False, highlight=False, soft_wrap=True)
    lock = threading.Lock()
    plan: dict[str, Any] = {"id": None, "total": 0, "ended": 0}

    def on_plan(sweep_id: str, jobs: list[Any]) -> None:
        plan.update(id=sweep_id, total=len(jobs))
        where = f" ({args.ray_address})" if args.ray_address else f", {args.workers} at once"
        console.print(f"apo sweep: {sweep_id}: {len(jobs)} job(s), executor {args.executor}{where}")

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
        result = sweep(args.sweep_file, executor=args.executor, workers=args.workers, ray_address=args.ray_address,
                       retries=args.retries, runs_dir=args.runs_dir, data_dir=args.data_dir, new=args.new,
                       on_event=on_event, on_plan=on_plan)
    except KeyboardInterrupt:
        if plan["id"] is None:
            raise
        console.print(f"interrupted: the jobs in flight kept partial results; run `apo sweep {args.sweep_file}` "
                      f"again to continue sweep {plan['id']}")
        return 130
    states = [o.state for o in result.outcomes]
    if args.json:
        print(result.model_dump_json(indent=2))
    else:
        if result.leaderboard is not None:
            print_leaderboard(result.leaderboard, out)
        counts = ", ".join(f"{states.count(s)} {s}" for s in ("complete", "partial", "interrupted", "failed")
                           if s in states)
        out.print(f"sweep {result.sweep_id}: {counts} in {result.seconds:.0f} s; jobs and logs in {result.folder}"
                  + (f"; report {result.report}" if result.report else ""))
    return 1 if "failed" in states else 130 if "interrupted" in states else 0
