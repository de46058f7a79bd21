"""A trained adapter's scoring passes with and without the answers its log-probability pass already found.

The run scores an adapter on each example twice: the gold answer's log-probability, then the greedy answer. Where
the first pass shows that greedy decoding would write the gold answer (every gold token the greedy choice, and the
token after them ending the answer), :class:`~optimizer.search.soft.model.SoftModel` takes the answer from it
instead of decoding (``APO_LOGPROB_REUSE=0`` turns that off). For each method and task this trains the adapter
``--steps`` steps on the embedded SmolLM2 (one thread), then scores the test split through the run's adapter
scorer as the run does (batches of 64 pairs, each its log-probabilities then its answers), once to warm up, then
in the order off, on, off, on, so that the machine's drift shows: seconds, the answers taken from the first pass,
the test accuracy, and whether the answers are the same.

Usage (the committed results were made with the command in evals/README.md):

    OMP_NUM_THREADS=1 python evals/bench_soft_answers.py --data-dir ../shared/data/instruction_induction \\
        --tasks antonyms,larger_animal --out evals/results/soft_answers
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench_adaptation import TRAINED as METHODS

from optimizer.config import RunConfig
from optimizer.run.provenance import git_commit

BATCH = int(RunConfig.model_fields["score_batch_size"].default)
"""Pairs the run's evaluator sends the scorer at once."""
LABEL = "<adapter>"


class _Target:
    """Books nothing: the benchmark runs no budget."""

    def passes(self, rows: int, tokens: int) -> contextlib.nullcontext:
        return contextlib.nullcontext()


def score(scorer: Any, model: Any, examples: list, reuse: bool) -> tuple[float, list[str], int]:
    """Seconds, answers and answers taken from the first pass, scoring ``examples`` as the run does: batches of
    ``score_batch_size`` pairs, each its log-probabilities then its answers, through the adapter's scorer."""
    from optimizer.run.scoring import ACC, LP

    os.environ["APO_LOGPROB_REUSE"] = "1" if reuse else "0"
    known, start, answers = model.known_answers, time.perf_counter(), []
    for i in range(0, len(examples), BATCH):
        pairs = [(LABEL, ex) for ex in examples[i:i + BATCH]]
        scorer.compute(pairs, frozenset({LP}))
        answers += [r.output for r in scorer.compute(pairs, frozenset({ACC}))]
    return time.perf_counter() - start, answers, model.known_answers - known


def measure(method: str, name: str, task: Any, adapter: Any, steps: int, folder: Path) -> dict[str, Any]:
    """One method on one task: train, save, then score the test split off, on, off, on."""
    from optimizer.run.engine import execution_template
    from optimizer.search.soft.model import SoftModel
    from optimizer.search.soft.search import SoftScorer
    from optimizer.settings import SoftConfig
    from optimizer.tasks.metrics import resolve_metric

    template = execution_template(task, shots=0, style="completion", seed=0)
    model = SoftModel(method, SoftConfig(), adapter.model, adapter.tokenizer, template, 0)
    train = list(task.train)
    for step in range(steps):
        model.train_step(random.Random(f"0:soft:{step}").sample(train, min(8, len(train))))
    model.save(folder / f"{name}-{method}")
    metric = resolve_metric(task.metric, task.labels)
    scorer = SoftScorer(None, model, _Target(), metric)
    scorer.register(LABEL, folder / f"{name}-{method}")
    examples = list(task.test)
    score(scorer, model, examples, False)  # warm-up, not reported
    runs = [score(scorer, model, examples, reuse) for reuse in (False, True, False, True)]
    on = runs[1][1]
    return {"task": name, "method": method, "steps": steps, "n": len(examples),
            "off_s": [round(runs[0][0], 2), round(runs[2][0], 2)], "on_s": [round(runs[1][0], 2), round(runs[3][0], 2)],
            "known": runs[1][2], "acc": round(sum(metric(a, ex.answers) for a, ex in zip(on, examples)) / len(on), 4),
            "same_answers": runs[0][1] == on == runs[2][1] == runs[3][1]}


def markdown(report: dict[str, Any]) -> str:
    lines = ["# A trained adapter's scoring with the answers its log-probability pass found", "",
             f"Command: `{report['command']}`", "", f"Machine: {report['machine']}; apo commit {report['git_commit']}; "
             "one thread; seconds to score the test split (log-probabilities, then answers), in the order off, on, "
             "off, on.", "",
             "| task | method | steps | test n | accuracy | answers from the first pass | off s | on s | off / on | "
             "same answers |", "|---" * 10 + "|"]
    for r in report["rows"]:
        ratio = sum(r["off_s"]) / sum(r["on_s"])
        lines.append(f"| {r['task']} | {r['method']} | {r['steps']} | {r['n']} | {r['acc']:.2f} | {r['known']} | "
                     f"{', '.join(map(str, r['off_s']))} | {', '.join(map(str, r['on_s']))} | {ratio:.2f} | "
                     f"{'yes' if r['same_answers'] else 'NO'} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", required=True, help="the instruction-induction folder")
    ap.add_argument("--tasks", required=True, help="comma-separated generation tasks")
    ap.add_argument("--methods", default=",".join(METHODS), help="comma-separated (default: all four)")
    ap.add_argument("--steps", type=int, default=50, help="training steps before scoring (default: %(default)s)")
    ap.add_argument("--out", required=True, help="OUT.json and OUT.md are written")
    args = ap.parse_args(argv)
    import torch

    from optimizer.models.registry import load_model
    from optimizer.tasks.task import load_task

    torch.set_num_threads(1)
    adapter = load_model("embedded")
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for name in [t for t in args.tasks.split(",") if t]:
            task = load_task(name, data_dir=args.data_dir, seed=0)
            for method in [m for m in args.methods.split(",") if m]:
                rows.append(measure(method, name, task, adapter, args.steps, Path(folder)))
                print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    report = {"command": "OMP_NUM_THREADS=1 python " + " ".join([sys.argv[0], *(argv or sys.argv[1:])]),
              "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.platform()}",
              "git_commit": git_commit(), "rows": rows}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n")
    out.with_suffix(".md").write_text(markdown(report))
    print(markdown(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
