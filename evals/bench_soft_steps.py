"""A generation adapter's LM head only where the loss reads it, against every position: seconds per training step
and per dev log-probability pass, for each trained method on the grid's instruction-induction tasks, one thread.

:meth:`~optimizer.search.soft.model.SoftModel._token_nll` runs the head only from the first position that predicts
an answer token (``logits_to_keep``); the reference here is the computation without it: the head and the
cross-entropy on every position, virtual tokens included, read at the answer tokens. For each task and method this
builds the adapter as the run does (seed 0), then times, in the order head-where-read, every position,
head-where-read, every position (so that the machine's drift shows), ``--steps`` training steps of ``--batch``
examples after a warm-up step, and one log-probability pass over the first 50 dev examples in the run's chunks. Both
paths start from the same weights and see the same batches, so the losses and log-probabilities must agree: the
largest difference is reported.

Usage (the committed results were made with the command in evals/README.md):

    OMP_NUM_THREADS=1 python evals/bench_soft_steps.py --data-dir ../shared/data/instruction_induction \\
        --out evals/results/soft_steps
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from bench_adaptation import PARTS
from bench_adaptation import TRAINED as METHODS
from bench_adaptation_floor import BATCH, DEV

from optimizer.run.provenance import git_commit
from optimizer.search.soft.search import CHUNK

INDUCTION = PARTS["induction-smollm2"]["tasks"]
"""The grid's instruction-induction tasks (SST-2's adapters read one slot already: bench_soft_head.py)."""


def every_position(model: Any, ids: Any, mask: Any, labels: Any, greedy: bool = False) -> Any:
    """The reference: the head and the cross-entropy on every position (virtual tokens first, then the inputs),
    read at the answer tokens."""
    import torch

    logits = model.model(input_ids=ids, attention_mask=mask).logits[:, -ids.shape[1]:]
    shift_logits, shift_labels = logits[:, :-1].float(), labels[:, 1:]
    loss = torch.nn.functional.cross_entropy(shift_logits.reshape(-1, shift_logits.shape[-1]),
                                             shift_labels.reshape(-1), ignore_index=-100, reduction="none")
    return loss.view(shift_labels.shape).sum(1), logits.argmax(-1) if greedy else (shift_labels != -100).sum(1)


def timed(model: Any, batches: list, dev: list, full: bool) -> tuple[float, float, list[float], list[float]]:
    """Mean seconds a training step, seconds of the dev log-probability pass, the losses and log-probabilities,
    from a fresh copy of the adapter's starting weights."""
    model.restore_initial()
    if full:
        model._token_nll = lambda *a, **k: every_position(model, *a, **k)
    else:
        model.__dict__.pop("_token_nll", None)
    model.train_step(batches[0])  # warm-up
    start = time.perf_counter()
    losses = [model.train_step(b) for b in batches[1:]]
    step_s = (time.perf_counter() - start) / (len(batches) - 1)
    rows = sorted(dev, key=lambda ex: len(ex.input))
    start = time.perf_counter()
    lps = [lp for i in range(0, len(rows), CHUNK) for lp in model.logprobs(rows[i:i + CHUNK])]
    return step_s, time.perf_counter() - start, losses, lps


def measure(method: str, name: str, task: Any, adapter: Any, steps: int, batch: int) -> dict[str, Any]:
    """One method on one task, both paths twice."""
    import copy

    import torch

    from optimizer.run.engine import execution_template
    from optimizer.search.soft.model import SoftModel
    from optimizer.settings import SoftConfig

    template = execution_template(task, shots=0, style="completion", seed=0)
    model = SoftModel(method, SoftConfig(), adapter.model, adapter.tokenizer, template, 0)
    weights = [p.detach().clone() for p in model.params]
    state = copy.deepcopy(model.optimizer.state_dict())

    def restore() -> None:
        with torch.no_grad():
            for p, w in zip(model.params, weights):
                p.copy_(w)
        model.optimizer.load_state_dict(copy.deepcopy(state))

    model.restore_initial = restore  # type: ignore[attr-defined]
    rng = random.Random(0)
    batches = [rng.sample(list(task.train), min(batch, len(task.train))) for _ in range(steps + 1)]
    dev = list(task.dev)[:DEV]
    runs: dict[bool, list[tuple[float, float, list[float], list[float]]]] = {False: [], True: []}
    for full in (False, True, False, True):
        runs[full].append(timed(model, batches, dev, full))
    diff = max(abs(a - b) for x, y in zip(runs[False], runs[True]) for a, b in zip(x[2] + x[3], y[2] + y[3]))
    row = {"task": name, "method": method, "max_abs_diff": diff}
    for full, key in ((False, "kept"), (True, "full")):
        row[f"{key}_step_s"] = [round(r[0], 3) for r in runs[full]]
        row[f"{key}_dev_s"] = [round(r[1], 2) for r in runs[full]]
    row["step_ratio"] = round(statistics.mean(row["full_step_s"]) / statistics.mean(row["kept_step_s"]), 2)
    row["dev_ratio"] = round(statistics.mean(row["full_dev_s"]) / statistics.mean(row["kept_dev_s"]), 2)
    return row


def markdown(report: dict[str, Any]) -> str:
    lines = [f"# An adapter's LM head where the loss reads it, against every position ({report['model']})", "",
             f"Command: `{report['command']}`", "",
             f"Machine: {report['machine']}; apo commit {report['git_commit']}; seed 0; {report['steps']} steps of "
             f"{report['batch']} examples after a warm-up, then the first {DEV} dev examples' log-probabilities, "
             "in the order where-read, every, where-read, every.", "",
             "| task | method | step s: where read | step s: every position | every / where read | dev pass s: where "
             "read | dev pass s: every position | every / where read | largest difference (loss, log-prob) |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in report["rows"]:
        lines.append(f"| {r['task']} | {r['method']} | {', '.join(map(str, r['kept_step_s']))} | "
                     f"{', '.join(map(str, r['full_step_s']))} | {r['step_ratio']} | "
                     f"{', '.join(map(str, r['kept_dev_s']))} | {', '.join(map(str, r['full_dev_s']))} | "
                     f"{r['dev_ratio']} | {r['max_abs_diff']:.1e} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", required=True, help="the instruction-induction data folder")
    ap.add_argument("--tasks", default=",".join(INDUCTION), help="comma-separated tasks (default: the grid's)")
    ap.add_argument("--methods", default=",".join(METHODS), help="comma-separated trained methods")
    ap.add_argument("--model", default="embedded", help="a local causal LM apo loads (default: embedded)")
    ap.add_argument("--steps", type=int, default=4, help="training steps timed per path and order")
    ap.add_argument("--batch", type=int, default=BATCH, help="examples a training step (the grid's)")
    ap.add_argument("--out", required=True, help="report path without extension (.json and .md written)")
    args = ap.parse_args(argv)
    if not Path(args.data_dir).is_dir():
        print(f"error: --data-dir {args.data_dir!r} is not a folder; pass the instruction-induction data folder",
              file=sys.stderr)
        return 2
    import torch

    from optimizer.models.registry import load_model
    from optimizer.tasks.task import load_task

    torch.set_num_threads(1)
    adapter = load_model(args.model)
    rows = []
    for name in args.tasks.split(","):
        task = load_task(name, data_dir=args.data_dir, seed=0)
        for method in args.methods.split(","):
            row = measure(method, name, task, adapter, args.steps, args.batch)
            print(f"{name} {method}: step x{row['step_ratio']}, dev x{row['dev_ratio']}, "
                  f"diff {row['max_abs_diff']:.1e}", file=sys.stderr, flush=True)
            rows.append(row)
    report = {"command": "OMP_NUM_THREADS=1 python " + " ".join([sys.argv[0], *sys.argv[1:]]),
              "machine": f"{platform.machine()}, {platform.platform()}", "git_commit": git_commit(),
              "model": args.model, "steps": args.steps, "batch": args.batch, "rows": rows}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(report, indent=1) + "\n")
    out.with_suffix(".md").write_text(markdown(report))
    print(markdown(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
