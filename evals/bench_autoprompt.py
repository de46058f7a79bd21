"""AutoPrompt benchmark: the manual template against the searched trigger, on SST-2 and LAMA T-REx.

For each setting, one AutoPrompt run (``searcher="autoprompt"``) is made through the same
engine as ``apo optimize``; its result holds the best trigger prompt (chosen on dev) and the
manual template (the task's human baseline), both scored on the full test split with the
same label words. Reported: test accuracy (SST-2: the 872 dev sentences) or P@1 (LAMA: the
LAMA facts of the relation) with bootstrap 95% intervals, the paired difference with its
interval, the search time and the model passes.

Usage (the committed results were made with the commands in evals/README.md):

    python evals/bench_autoprompt.py --data-dir ../shared/data --settings sst2-splade \
        --out evals/results/autoprompt_sst2_splade

Settings: ``sst2-splade``, ``sst2-smollm2``, ``lama-splade`` (P17, P19, P36, P101 by default;
``--relations`` changes them). Results go to OUT.json and OUT.md; runs stay under --runs-dir.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

from optimizer import optimize
from optimizer.report.stats import bootstrap_ci, paired_bootstrap_ci
from optimizer.run.provenance import git_commit

SST2_WORDS = {"negative": ["bad"], "positive": ["good"]}
# Five label words per class, as in the paper (their probabilities are summed per class).
SST2_WORDS5 = "positive=good,great,excellent,wonderful,perfect;negative=bad,terrible,awful,poor,horrible"

SETTINGS = {
    # SPLADE-tiny is small and fast: the paper's 100 candidates.
    "sst2-splade": dict(task="sst2", target="embedded:splade-tiny", cloze_template="{sentence} [T] [T] [T] [P] .",
                        label_words=SST2_WORDS, token_candidates=100, iterations=100, gradient_batch_size=32,
                        eval_batch_size=32, dev_limit=200, loss="labels"),
    # The same with 4x larger batches and fewer candidates (about the same passes per iteration): with
    # batches of 32, the best of 100 candidates on one batch mostly wins by noise.
    "sst2-splade-b128": dict(task="sst2", target="embedded:splade-tiny", cloze_template="{sentence} [T] [T] [T] [P] .",
                             label_words=SST2_WORDS, token_candidates=30, iterations=60, gradient_batch_size=128,
                             eval_batch_size=128, dev_limit=200, loss="labels"),
    # SPLADE-tiny from the same hand-written start as sst2-smollm2-init, and that start alone.
    "sst2-splade-start": dict(task="sst2", target="embedded:splade-tiny", cloze_template="{sentence} [T] [T] [T] [P] .",
                              label_words=SST2_WORDS, token_candidates=30, iterations=0, gradient_batch_size=128,
                              eval_batch_size=128, dev_limit=200, loss="labels", initial_trigger="overall it was"),
    "sst2-splade-init": dict(task="sst2", target="embedded:splade-tiny", cloze_template="{sentence} [T] [T] [T] [P] .",
                             label_words=SST2_WORDS, token_candidates=30, iterations=60, gradient_batch_size=128,
                             eval_batch_size=128, dev_limit=200, loss="labels", initial_trigger="overall it was"),
    # sst2-splade-b128 with five label words per class for the manual template and the search alike.
    "sst2-splade-5w": dict(task="sst2", target="embedded:splade-tiny", cloze_template="{sentence} [T] [T] [T] [P] .",
                           label_words=SST2_WORDS5, token_candidates=30, iterations=60, gradient_batch_size=128,
                           eval_batch_size=128, dev_limit=200, loss="labels"),
    # SmolLM2 (135M, causal) is ~100x slower per pass here: fewer candidates, iterations and dev examples.
    "sst2-smollm2": dict(task="sst2", target="embedded", cloze_template="{sentence} [T] [T] [T] [P]",
                         label_words=SST2_WORDS, token_candidates=8, iterations=20, gradient_batch_size=16,
                         eval_batch_size=16, dev_limit=50, train_eval_size=32, loss="labels"),
    # SmolLM2 again, with 4x larger batches, starting from a hand-written phrase instead of "the the the"
    # (the search only accepts replacements that lower the training loss).
    "sst2-smollm2-init": dict(task="sst2", target="embedded", cloze_template="{sentence} [T] [T] [T] [P]",
                              label_words=SST2_WORDS, token_candidates=8, iterations=12, gradient_batch_size=64,
                              eval_batch_size=64, dev_limit=50, train_eval_size=32, loss="labels",
                              initial_trigger="Overall it was"),
    # The starting trigger alone (no search iteration): what the search itself added to sst2-smollm2-init.
    "sst2-smollm2-start": dict(task="sst2", target="embedded", cloze_template="{sentence} [T] [T] [T] [P]",
                               label_words=SST2_WORDS, token_candidates=8, iterations=0, gradient_batch_size=64,
                               eval_batch_size=64, dev_limit=50, train_eval_size=32, loss="labels",
                               initial_trigger="Overall it was"),
    "lama-splade": dict(target="embedded:splade-tiny", cloze_template="[X] [T] [T] [T] [T] [T] [P] .",
                        token_candidates=50, iterations=60, gradient_batch_size=32, eval_batch_size=32, dev_limit=100),
    # A longer search (for a relation where 60 iterations lowered the loss but not P@1).
    "lama-splade-long": dict(target="embedded:splade-tiny", cloze_template="[X] [T] [T] [T] [T] [T] [P] .",
                             token_candidates=50, iterations=200, gradient_batch_size=32, eval_batch_size=32,
                             dev_limit=100),
}


def _ci(values: list[float]) -> list[float] | None:
    return [round(v, 4) for v in bootstrap_ci(values)] if values else None


def _passes(run_dir: str) -> dict:
    last = {}
    for line in (Path(run_dir) / "events.jsonl").read_text().splitlines():
        e = json.loads(line)
        if e.get("type") in ("trigger", "autoprompt_step"):
            last = e
    return {"iterations": last.get("iteration"), **last.get("passes", {})}


def summarize(result, setting: str, params: dict) -> dict:
    """The benchmark row of one run."""
    prompts = {p.name: p for p in ([result.best] if result.best else []) + list(result.baselines)}
    row = {"setting": setting, "task": result.task, "target": result.target, "run_id": result.run_id,
           "status": result.status, "params": params, "calls": result.calls,
           "search_s": result.timings.get("search_s"), "total_s": result.timings.get("total_s"),
           "passes": _passes(result.run_dir), "prompts": {}}
    for kind, label in (("best", "autoprompt"), ("best_human", "manual")):
        p = prompts.get(kind)
        if p is None or p.test is None:
            continue
        row["prompts"][label] = {"text": p.text, "dev_acc": p.dev.acc, "dev_n": p.dev.n, "test_acc": p.test.acc,
                                 "test_acc_ci": _ci(p.test_acc), "n": p.test.n}
    best, human = prompts.get("best"), prompts.get("best_human")
    if best and human and best.test_acc and len(best.test_acc) == len(human.test_acc):
        diff = sum(best.test_acc) / len(best.test_acc) - sum(human.test_acc) / len(human.test_acc)
        row["diff"] = {"acc_diff": round(diff, 4),
                       "acc_diff_ci": [round(v, 4) for v in paired_bootstrap_ci(best.test_acc, human.test_acc)]}
    return row


def _f(v, d=3):
    return "-" if v is None else f"{v:.{d}f}"


def markdown(report: dict) -> str:
    lines = [f"# AutoPrompt benchmark ({report['machine']})", "", f"command: `{report['command']}`", "",
             "| task | model | manual acc [95% CI] | AutoPrompt acc [95% CI] | diff [95% CI] | n | search s | "
             "passes fwd/bwd | trigger prompt |", "|---|---|---|---|---|---|---|---|---|"]
    for r in report["rows"]:
        m, a, d = r["prompts"].get("manual", {}), r["prompts"].get("autoprompt", {}), r.get("diff", {})

        def cell(p):
            ci = p.get("test_acc_ci") or [None, None]
            return f"{_f(p.get('test_acc'))} [{_f(ci[0])}, {_f(ci[1])}]"

        dci = d.get("acc_diff_ci") or [None, None]
        lines.append(f"| {r['task']} | {r['target']} | {cell(m)} | {cell(a)} | {_f(d.get('acc_diff'), 3)} "
                     f"[{_f(dci[0])}, {_f(dci[1])}] | {a.get('n', '-')} | {_f(r['search_s'], 0)} | "
                     f"{r['passes'].get('forward', '-')}/{r['passes'].get('backward', '-')} | "
                     f"`{a.get('text', '')}` |")
    lines += ["", "Manual templates: " + "; ".join(f"{r['task']}: `{r['prompts'].get('manual', {}).get('text', '')}`"
                                                   for r in report["rows"])]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", required=True, help="folder holding sst2/ and lama_trex/ (e.g. ../shared/data)")
    ap.add_argument("--settings", default="sst2-splade,sst2-smollm2,lama-splade", help="comma-separated settings")
    ap.add_argument("--relations", default="P17,P19,P36,P101", help="LAMA relations for lama-splade")
    ap.add_argument("--iterations", type=int, help="override every setting's iterations (for a quick check)")
    ap.add_argument("--test-size", type=int, help="score only the first N test examples (for a quick check)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, help="torch CPU threads")
    ap.add_argument("--runs-dir", default="runs/bench")
    ap.add_argument("--out", required=True, help="output path without extension (writes OUT.json and OUT.md)")
    args = ap.parse_args(argv)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    rows = []
    for setting in [s.strip() for s in args.settings.split(",") if s.strip()]:
        if setting not in SETTINGS:
            ap.error(f"unknown setting {setting!r}; known: {', '.join(SETTINGS)}")
        base = dict(SETTINGS[setting])
        tasks = [f"lama:{r}" for r in args.relations.split(",")] if setting.startswith("lama") else [base.pop("task")]
        if args.iterations is not None:
            base["iterations"] = args.iterations
        for task in tasks:
            params = {**base, "task": task, "seed": args.seed}
            started = time.time()
            print(f"[{time.strftime('%H:%M:%S')}] {setting} {task} ...", file=sys.stderr, flush=True)
            result = optimize(task, searcher="autoprompt", data_dir=args.data_dir, runs_dir=args.runs_dir,
                              seed=args.seed, test_limit=args.test_size, **base)
            row = summarize(result, setting, params)
            rows.append(row)
            d = row.get("diff", {})
            print(f"[{time.strftime('%H:%M:%S')}] {task} on {result.target}: manual "
                  f"{_f(row['prompts'].get('manual', {}).get('test_acc'))} autoprompt "
                  f"{_f(row['prompts'].get('autoprompt', {}).get('test_acc'))} diff {_f(d.get('acc_diff'))} "
                  f"{d.get('acc_diff_ci')} in {time.time() - started:.0f}s", file=sys.stderr, flush=True)
            report = {"command": "python " + " ".join([sys.argv[0], *(argv or sys.argv[1:])]),
                      "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores", "git_commit": git_commit(),
                      "rows": rows}
            out = Path(args.out)
            out.parent.mkdir(parents=True, exist_ok=True)
            out.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n")
            out.with_suffix(".md").write_text(markdown(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
