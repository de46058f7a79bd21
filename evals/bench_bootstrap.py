"""Bootstrap intervals drawn in bulk against the plain Python loop they replace: seconds per interval at several
sample sizes (2,000 resamples, apo's default; the fastest of 3 calls each), checking that both give the same
interval, and optionally the seconds to build a leaderboard of run folders both ways.

Usage:

    python evals/bench_bootstrap.py [--runs RUNS_DIR [--limit N]]

The plain loop is the reference the tests compare with (``random.Random(seed).randrange`` per draw, ``sum`` per
resample); the bulk path is :func:`optimizer.report.stats.bootstrap_ci`. Quote the ratio of one run.
"""

from __future__ import annotations

import argparse
import random
import time
from pathlib import Path

from optimizer.report.stats import _percentile, bootstrap_ci


def plain_loop(values: list[float], resamples: int = 2000, seed: int = 0) -> tuple[float, float]:
    """The interval as a loop of ``randrange`` draws computes it."""
    rng, n = random.Random(seed), len(values)
    means = sorted(sum(values[rng.randrange(n)] for _ in range(n)) / n for _ in range(resamples))
    tail = (1 - 0.95) / 2
    return (_percentile(means, tail), _percentile(means, 1 - tail))


def _seconds(fn, *args, repeat: int = 1) -> tuple[float, object]:
    """The fastest of ``repeat`` calls (the machine is shared), and the result."""
    best, out = float("inf"), None
    for _ in range(repeat):
        started = time.perf_counter()
        out = fn(*args)
        best = min(best, time.perf_counter() - started)
    return best, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", help="a runs folder: also time build_leaderboard over its finished runs, both ways")
    ap.add_argument("--limit", type=int, default=40, help="at most this many of its runs")
    args = ap.parse_args()
    rng = random.Random(0)
    for n in (20, 100, 872, 5000):
        values = [float(rng.random() < 0.7) for _ in range(n)]
        bulk_s, bulk = _seconds(bootstrap_ci, values, repeat=3)
        plain_s, plain = _seconds(plain_loop, values, repeat=3)
        print(f"n {n:5d}: bulk {bulk_s:.4f} s, plain loop {plain_s:.4f} s, {plain_s / bulk_s:.1f}x; "
              f"same interval: {bulk == plain}")
    if args.runs:
        from unittest import mock

        import optimizer.report.build as build
        import optimizer.report.stats as stats

        folders = sorted(p.parent for p in Path(args.runs).glob("*/result.json"))[: args.limit]
        board_s, board = _seconds(build.build_leaderboard, folders)
        with mock.patch.object(build, "bootstrap_ci", plain_loop), mock.patch.object(stats, "bootstrap_ci", plain_loop):
            plain_s, plain = _seconds(build.build_leaderboard, folders)
        print(f"leaderboard of {len(folders)} runs ({len(board.rows)} rows): bulk {board_s:.1f} s, plain loop "
              f"{plain_s:.1f} s, {plain_s / board_s:.1f}x; same leaderboard: {board == plain}")


if __name__ == "__main__":
    main()
