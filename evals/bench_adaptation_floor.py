"""The adaptation benchmark's compute floor: how long its trained cells on SmolLM2 must take on this CPU.

``bench_adaptation.py`` trains every method (prompt tuning, prefix tuning, P-tuning, LoRA) for 100 AdamW steps of
8 examples in each of its cells, scores the adapter on the dev examples at each of 4 checkpoints and scores the
shipped adapter on the test split. This benchmark times those passes alone, at today's code, one thread a process
(as the grid runs, one process per core), for each method on each task of the grid:

- one training step (the mean of ``--steps`` steps after a warm-up), and its floating-point operations (the same
  steps run again under ``torch.utils.flop_counter``), as a rate against the best rate of plain fp32 matrix
  products of the model's MLP shapes on the same thread: how much faster the step could run at this precision;
- one scoring pass over the dev examples and one over the test split, as the run scores them (generation tasks:
  greedy answers and gold log-probabilities in chunks of 16 rows of like length; SST-2: the cloze template's
  label words, one pass for both).

The floor of a cell is 100 steps, 4 dev passes and 1 test pass; the grid's floor multiplies it by the cells of
each (task, method) in the committed grid (``--grid``, adaptation.json). Everything else a cell does (loading,
confirmation, the baselines, the untrained methods, AutoPrompt) is left out, so the grid cannot run faster than
this at fp32 without changing what it computes. Written to OUT.json and OUT.md.

Usage (the committed results were made with the command in evals/README.md):

    OMP_NUM_THREADS=1 python evals/bench_adaptation_floor.py --data-dir ../shared/data \\
        --out evals/results/adaptation_floor
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import sys
import tarfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from bench_adaptation import PARTS, SOFT_SETTINGS, SST2_WORDS
from bench_adaptation import TRAINED as METHODS

from optimizer.config import RunConfig
from optimizer.run.provenance import git_commit
from optimizer.search.soft.search import CHUNK
from optimizer.settings import SoftConfig
from optimizer.types import Example

TASKS = {task: PARTS[part]["data"] for part in ("induction-smollm2", "sst2-smollm2") for task in PARTS[part]["tasks"]}
"""The grid's tasks on SmolLM2 and their folders under --data-dir."""
STEPS = SOFT_SETTINGS["steps"]
CHECKPOINTS = STEPS // SOFT_SETTINGS["eval_every"]
BATCH = SoftConfig().train_batch_size
DEV = int(RunConfig.model_fields["dev_limit"].default)
"""A cell's schedule (the grid's), its training batch, the dev examples a run races on."""

SHAPES = [(512, 576, 1536), (2048, 576, 1536), (2048, 1536, 576)]
"""Matrix products of SmolLM2's MLP shapes (rows, in, out): the best of their rates is the reference."""


def matmul_rate(seconds: float = 2.0) -> float:
    """The best GFLOP/s of fp32 products of :data:`SHAPES` on this thread."""
    import torch

    rates = []
    for m, k, n in SHAPES:
        a, b = torch.randn(m, k), torch.randn(k, n)
        torch.mm(a, b)
        count, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            torch.mm(a, b)
            count += 1
        rates.append(2 * m * k * n * count / (time.perf_counter() - start) / 1e9)
    return max(rates)


def build(method: str, task_name: str, task: Any, adapter: Any) -> Any:
    """The trained method's model as the run builds it (a cloze template for SST-2)."""
    from optimizer.run.engine import execution_template
    from optimizer.search.soft.model import SoftModel

    if task_name != "sst2":
        template = execution_template(task, shots=0, style="completion", seed=0)
        return SoftModel(method, SoftConfig(), adapter.model, adapter.tokenizer, template, 0)
    from optimizer.search.autoprompt.cloze_model import ClozeModel, Verbalizer
    from optimizer.search.soft.cloze import ClozeSoftModel
    from optimizer.tasks.cloze import parse_template

    cloze = ClozeModel(adapter.model, adapter.tokenizer, kind="causal")
    return ClozeSoftModel(method, SoftConfig(), cloze, parse_template("{sentence} It was [P] ."),
                          Verbalizer(cloze, SST2_WORDS, normalize="vocab"), 0)


def scoring_pass(model: Any, examples: list[Example], generate: bool) -> float:
    """Seconds to score ``examples`` as the run's soft scorer does (by length, in chunks)."""
    rows = sorted(examples, key=lambda ex: len(ex.input))
    start = time.perf_counter()
    for i in range(0, len(rows), CHUNK):
        chunk = rows[i:i + CHUNK]
        model.logprobs(chunk)
        if generate:
            model.answers(chunk)
    return time.perf_counter() - start


def measure(method: str, task_name: str, task: Any, adapter: Any, steps: int) -> dict[str, Any]:
    """One method on one task: a training step's seconds and GFLOP, a dev pass's and a test pass's seconds."""
    from torch.utils.flop_counter import FlopCounterMode

    model = build(method, task_name, task, adapter)
    rng = random.Random(0)
    train = list(task.train)
    batches = [rng.sample(train, min(BATCH, len(train))) for _ in range(steps + 1)]
    model.train_step(batches[0])  # warm-up
    start = time.perf_counter()
    for batch in batches[1:]:
        model.train_step(batch)
    step_s = (time.perf_counter() - start) / steps
    counter = FlopCounterMode(display=False)
    with counter:  # the same steps again, counted (the counter's own work kept out of the timing)
        for batch in batches[1:]:
            model.train_step(batch)
    generate = task_name != "sst2"
    dev = list(task.dev)[:DEV]
    return {"task": task_name, "method": method, "step_s": round(step_s, 4),
            "step_gflop": round(counter.get_total_flops() / steps / 1e9, 2),
            "dev_pass_s": round(scoring_pass(model, dev, generate), 2),
            "test_pass_s": round(scoring_pass(model, list(task.test), generate), 2), "test_n": len(task.test)}


def floors(row: dict[str, Any], cells: int, grid_step_s: float, grid_test_s: float) -> dict[str, Any]:
    """A (task, method)'s cells, its training floor (``STEPS`` steps a cell) and its floor (with ``CHECKPOINTS`` dev
    passes and one test pass a cell) at the times measured here, and its training and test seconds at the grid's
    own (its median step and test seconds), all in seconds."""
    train = cells * STEPS * row["step_s"]
    grid_train = cells * STEPS * grid_step_s
    return {"cells": cells, "grid_step_s": grid_step_s, "grid_test_s": grid_test_s, "train_floor_s": round(train, 1),
            "floor_s": round(train + cells * (CHECKPOINTS * row["dev_pass_s"] + row["test_pass_s"]), 1),
            "grid_train_floor_s": round(grid_train, 1), "grid_floor_s": round(grid_train + cells * grid_test_s, 1)}


def grid_cells(path: Path) -> dict[tuple[str, str], tuple[int, float, float]]:
    """Cells of each (task, method) on SmolLM2 in the committed grid, the median seconds of a training step in them
    (their recorded training seconds over ``STEPS``) and of their test scoring (the medians leave out the few cells
    whose process was paused)."""
    seconds: dict[tuple[str, str], list[tuple[float, float]]] = {}
    for r in json.loads(path.read_text())["rows"]:
        if r["target"] == "embedded" and r["searcher"] in METHODS and r["train_s"] is not None:
            seconds.setdefault((r["task"], r["searcher"]), []).append((r["train_s"], r["test_s"] or 0.0))
    return {k: (len(v), round(statistics.median(t for t, _ in v) / STEPS, 4), statistics.median(x for _, x in v))
            for k, v in seconds.items()}


def best_steps(archive: Path) -> dict[int, int]:
    """In the grid's trained cells on SmolLM2 (its runs archive, adaptation_runs.tar.gz), how many first reach
    their best dev accuracy at each checkpoint step: what fewer steps would have cut."""
    found: dict[str, dict[str, Any]] = {}
    with tarfile.open(archive, "r:gz") as tar:
        for member in tar.getmembers():
            run, _, name = member.name.partition("/")
            if name in ("config.json", "events.jsonl") and (f := tar.extractfile(member)) is not None:
                found.setdefault(run, {})[name] = f.read().decode()
    counts: Counter = Counter()
    for files in found.values():
        config = json.loads(files.get("config.json", "{}")).get("config", {})
        if config.get("target") != "embedded" or config.get("searcher") not in METHODS:
            continue
        marks = [json.loads(x) for x in files.get("events.jsonl", "").splitlines() if '"train_checkpoint"' in x]
        dev = {m["step"]: m["dev_acc"] for m in marks}  # a resumed run may journal a checkpoint twice
        if dev:
            counts[min(step for step, acc in dev.items() if acc == max(dev.values()))] += 1
    return dict(sorted(counts.items()))


def summarize(meta: dict[str, Any], measured: list[dict[str, Any]], grid: Path) -> dict[str, Any]:
    """The report: the measured rows with their floors against the grid's cells, and where the grid's cells peaked
    on dev (when its runs archive lies beside it)."""
    cells = grid_cells(grid)
    rows = [{**r, **floors(r, *cells.get((r["task"], r["method"]), (0, 0.0, 0.0)))} for r in measured]
    archive = grid.with_name(grid.stem + "_runs.tar.gz")
    totals = ("floor_s", "train_floor_s", "grid_train_floor_s", "grid_floor_s")
    return {**meta, **{k: round(sum(r[k] for r in rows), 1) for k in totals},
            "best_dev_step": best_steps(archive) if archive.exists() else {}, "rows": rows}


def markdown(report: dict[str, Any]) -> str:
    rate = report["matmul_gflops"]
    lines = ["# The adaptation grid's compute floor (trained methods on SmolLM2, fp32, one thread a process)", "",
             f"Command: `{report['command']}`", "",
             f"Machine: {report['machine']}; apo commit {report['git_commit']}; fp32 products of SmolLM2's MLP "
             f"shapes run at up to {rate:.1f} GFLOP/s on one thread.", "",
             "| task | method | step s | step GFLOP | GFLOP/s (share of the products') | the grid's step s (GFLOP/s) | "
             "dev pass s | test pass s (n) | the grid's test s | cells | floor s (cells x (100 steps + 4 dev + 1 "
             "test)) |", "|---" * 11 + "|"]
    for r in report["rows"]:
        gflops, grid = r["step_gflop"] / r["step_s"], r["step_gflop"] / r["grid_step_s"] if r["grid_step_s"] else 0
        lines.append(f"| {r['task']} | {r['method']} | {r['step_s']:.3f} | {r['step_gflop']:.1f} | {gflops:.1f} "
                     f"({gflops / rate:.0%}) | {r['grid_step_s']:.3f} ({grid:.1f}) | {r['dev_pass_s']:.1f} | "
                     f"{r['test_pass_s']:.1f} ({r['test_n']}) | {r['grid_test_s']:.0f} | {r['cells']} | "
                     f"{r['floor_s']:,.0f} |")
    def hours(key: str) -> str:
        return f"{report[key]:,.0f} core-seconds ({report[key] / 2 / 3600:.2f} hours on 2 cores)"

    lines += ["", f"Floor of the trained cells at the times measured here: {hours('floor_s')}; training alone "
                  f"{hours('train_floor_s')}. At the grid's own median step and test seconds: training "
                  f"{hours('grid_train_floor_s')}, training and test scoring {hours('grid_floor_s')}."]
    if report.get("best_dev_step"):
        steps = report["best_dev_step"]
        lines += ["", f"The grid's {sum(steps.values())} trained cells on SmolLM2 first reach their best dev "
                      "accuracy at step " + ", ".join(f"{k} ({v} cells)" for k, v in steps.items()) + "."]
    return "\n".join(lines) + "\n"


MEASURED = ("task", "method", "step_s", "step_gflop", "dev_pass_s", "test_pass_s", "test_n")


def measure_all(args: argparse.Namespace) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Every method on every task, one thread: the report's facts and its measured rows."""
    import torch

    from optimizer.models.registry import load_model
    from optimizer.tasks.task import load_task

    torch.set_num_threads(1)
    adapter = load_model("embedded")
    rows = []
    for name, folder in TASKS.items():
        task = load_task(name, data_dir=str(Path(args.data_dir) / folder) if folder else args.data_dir, seed=0)
        for method in METHODS:
            row = measure(method, name, task, adapter, args.steps)
            print(f"{name} {method}: step {row['step_s']:.3f} s, dev {row['dev_pass_s']:.1f} s, test "
                  f"{row['test_pass_s']:.1f} s", file=sys.stderr, flush=True)
            rows.append(row)
    meta = {"command": "OMP_NUM_THREADS=1 python " + " ".join([sys.argv[0], *sys.argv[1:]]),
            "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.platform()}",
            "git_commit": git_commit(), "matmul_gflops": round(matmul_rate(), 1)}
    return meta, rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", help="the shared data folder (sst2/, instruction_induction/); needed unless "
                                       "--rebuild")
    ap.add_argument("--grid", default="evals/results/adaptation.json", help="the committed grid (its cell counts)")
    ap.add_argument("--steps", type=int, default=8, help="training steps timed per method and task (after one "
                                                         "warm-up; default: %(default)s)")
    ap.add_argument("--out", required=True, help="OUT.json and OUT.md are written")
    ap.add_argument("--rebuild", action="store_true", help="only redo the floors of OUT.json's measured rows against "
                                                           "--grid (no model is loaded)")
    args = ap.parse_args(argv)
    if not args.rebuild and not args.data_dir:
        ap.error("--data-dir is needed to measure (or give --rebuild to redo the floors of OUT.json)")
    out = Path(args.out)
    if args.rebuild:
        previous = json.loads(out.with_suffix(".json").read_text())
        meta = {k: v for k, v in previous.items() if k in ("command", "machine", "git_commit", "matmul_gflops")}
        measured = [{k: v for k, v in r.items() if k in MEASURED} for r in previous["rows"]]
    else:
        meta, measured = measure_all(args)
    report = summarize(meta, measured, Path(args.grid))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n")
    out.with_suffix(".md").write_text(markdown(report))
    print(markdown(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
