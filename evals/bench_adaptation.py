"""Adaptation benchmark: prompt or tune? k-shot prompting, prompt search, AutoPrompt, soft prompts and LoRA on the
same tasks, models and splits, at several training sizes (``apo compare`` for each task and model).

Parts (``--parts``, comma-separated):

- ``sst2-splade``: SST-2, test = the 872 dev sentences, on SPLADE-tiny (a 4.4M-parameter BERT masked LM):
  baseline (the manual template ``{sentence} It was [P] .``), AutoPrompt, prompt tuning, prefix tuning, P-tuning,
  LoRA (PET-style through the label words);
- ``sst2-smollm2``: the same task on SmolLM2-135M-Instruct, read as the next token after ``{sentence} It was``:
  baseline (the manual template), AutoPrompt, and the four trained methods through the same template and label
  words; and the ``demos`` instruction searcher, which generates the label (k-shot, its own incumbent);
- ``induction-smollm2``: four instruction-induction tasks (antonyms, first_word_letter, larger_animal, sentiment;
  chosen for their spread of answer kinds before any was run) on SmolLM2: baseline (k-shot with the best human
  instruction), the ``demos`` searcher and the four trained methods.

For each task and model: training sizes 8, 32, 128 and all at seed 0, then seeds 1 and 2 at all. Per cell: test
accuracy of the shipped prompt with a bootstrap 95% interval, the paired difference against the incumbent (the
manual template or best human instruction, scored in the same run), the best-on-dev candidate's test accuracy
when it was not shipped, trainable parameters, training seconds and test (inference) seconds. Written to
OUT.json, OUT.md (learning-curve tables and every cell) and OUT.html (the leaderboard with the learning-curve
plots); ``--pack`` keeps the run folders in OUT_runs.tar.gz (without the adapters' weights), from which a later
session restores them.

It may run across sessions: each comparison is a sweep that continues where it stopped (finished runs are kept,
killed ones resume from their journals). ``--rebuild`` only re-summarises the runs already there.

Usage (the committed results were made with the commands in evals/README.md):

    python evals/bench_adaptation.py --data-dir ../shared/data --parts sst2-splade --out evals/results/adaptation
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tarfile
import time
from pathlib import Path
from typing import Any

from bench_search import _cell, _dcell, _f, _prompt, summarize

from optimizer import RunConfig, build_leaderboard, compare
from optimizer.report.curves import learning_curves_markdown
from optimizer.report.html import render_html
from optimizer.run.provenance import git_commit
from optimizer.types import RunResult

TRAINED = ["prompt-tuning", "prefix-tuning", "p-tuning", "lora"]
SEARCHER = str(RunConfig.model_fields["searcher"].default)
"""The instruction searcher: the default, demos (the one the search benchmark, bench_search.py, found best)."""
SOFT_SETTINGS = {"steps": 100, "eval_every": 25}
"""The trained methods' schedule on SmolLM2 (CPU): 100 AdamW steps of 8 examples, a checkpoint every 25. Every
other method runs with its defaults; no call cap, since testing alone reads the 872 SST-2 sentences several times."""
SST2_WORDS = {"negative": ["bad"], "positive": ["good"]}
"""SST-2's verbalizer (PET's, and the AutoPrompt benchmark's): the manual template reads good or bad at [P]."""
SIZES: list[int | None] = [8, 32, 128, None]
STAGES: list[tuple[list[int | None], list[int]]] = [(SIZES, [0]), ([None], [1, 2])]
"""The comparisons of a part, in order (sizes, seeds): each one sweep, continued where it stopped."""
ALL_FIRST: list[tuple[list[int | None], list[int]]] = [([None], [0]), ([8, 32, 128], [0]), ([None], [1, 2])]
"""On SmolLM2 (about 30 times slower here than SPLADE-tiny) every task at all training examples comes first, and
within a comparison the trained methods come before the searches (AutoPrompt on SmolLM2 takes hours a cell), so
that a benchmark stopped early has the cells the aim is about."""
PARTS: dict[str, dict[str, Any]] = {
    "sst2-splade": {"tasks": ["sst2"], "data": "", "target": "embedded:splade-tiny",
                    "methods": ["baseline", "autoprompt", *TRAINED], "settings": {"label_words": SST2_WORDS}},
    "sst2-smollm2": {"tasks": ["sst2"], "data": "", "target": "embedded",
                     "methods": ["baseline", *TRAINED, SEARCHER, "autoprompt"],
                     "settings": {**SOFT_SETTINGS, "label_words": SST2_WORDS}, "stages": ALL_FIRST},
    "induction-smollm2": {"tasks": ["antonyms", "first_word_letter", "larger_animal", "sentiment"],
                          "data": "instruction_induction", "target": "embedded",
                          "methods": ["baseline", *TRAINED, SEARCHER], "settings": SOFT_SETTINGS,
                          "stages": ALL_FIRST},
}


def cell(path: Path) -> dict[str, Any] | None:
    """The benchmark row of one finished run."""
    if not (path / "result.json").exists():
        return None
    data = json.loads((path / "result.json").read_text())
    result = RunResult.model_validate({k: v for k, v in data.items() if k != "schema"})
    config = json.loads((path / "config.json").read_text())["config"]
    row = summarize(result)
    best_dev = next((b for b in result.baselines if b.name == "best_dev"), None)
    marks = [json.loads(x) for x in (path / "events.jsonl").read_text().splitlines() if '"train_checkpoint"' in x]
    shipped_mark = next((m for m in marks if result.best and m.get("candidate") == result.best.candidate), None)
    row.update(target=result.target, train_limit=config.get("train_limit"),
               train_examples=(result.selection.sizes.get("train") if result.selection else None),
               best_dev=_prompt(best_dev), trainable_params=shipped_mark["trainable_params"] if shipped_mark else 0,
               adapter_params=marks[-1]["trainable_params"] if marks else 0,
               train_s=round(marks[-1]["train_seconds"], 1) if marks else None,
               test_s=result.timings.get("test_s"))
    return row


def run_part(name: str, args: argparse.Namespace) -> list[Path]:
    """Every comparison of one part (continued where it stopped); the run folders it made."""
    part = PARTS[name]
    data_dir = str(Path(args.data_dir) / part["data"]) if part["data"] else args.data_dir
    folders = []
    for sizes, seeds in part.get("stages", STAGES):
        for task in part["tasks"]:
            print(f"== {name}: {task} on {part['target']}, sizes {sizes}, seeds {seeds}", file=sys.stderr, flush=True)
            result = compare(task, target=part["target"], methods=part["methods"], sizes=sizes, seeds=seeds,
                             settings=part["settings"], runs_dir=args.runs_dir, data_dir=data_dir, workers=args.workers)
            folders += [Path(args.runs_dir) / j.run_id for j in result.jobs]
    return folders


def markdown(report: dict, board_md: list[str]) -> str:
    lines = ["# Adaptation benchmark: prompting, prompt search, soft prompts and LoRA by training size", "",
             f"Command: `{report['command']}`", "",
             f"Machine: {report['machine']}; apo commit {report['git_commit']}; parts {', '.join(report['parts'])}; "
             f"total wall time {report['total_wall_s']:.0f} s.", *board_md, "",
             "Every cell: test accuracy with bootstrap 95% interval; shipped − incumbent is paired over the same test "
             "examples (the incumbent: the manual template or best human instruction, in the same run); best on dev: "
             "the candidate with the best dev score when the confirmation test kept the incumbent.", "",
             "| task | model | method | train | seed | shipped | shipped − incumbent | verdict | best on dev (not "
             "shipped) | trained params | train s | test s | wall s |", "|---" * 13 + "|"]
    for r in sorted(report["rows"], key=lambda r: (r["task"], r["target"], r["searcher"], r["train_examples"] or 0,
                                                   r["seed"])):
        lines.append(f"| {r['task']} | {r['target']} | {r['searcher']} | {r['train_examples']} | {r['seed']} | "
                     f"{_cell(r['shipped'])} | {_dcell(r['vs_incumbent'])} | {r['verdict']} | {_cell(r['best_dev'])} | "
                     f"{r['adapter_params']:,} | {_f(r['train_s'], 0)} | {_f(r['test_s'], 0)} | "
                     f"{_f(r['wall_s'], 0)} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", required=True, help="the shared data folder (sst2/, instruction_induction/)")
    ap.add_argument("--parts", default=",".join(PARTS), help=f"comma-separated: {', '.join(PARTS)}")
    ap.add_argument("--runs-dir", default="runs/bench_adaptation")
    ap.add_argument("--workers", type=int, default=1, help="runs at once")
    ap.add_argument("--out", required=True, help="output path without extension")
    ap.add_argument("--rebuild", action="store_true", help="only re-summarise the runs already in --runs-dir")
    ap.add_argument("--pack", action="store_true", help="also keep the run folders in OUT_runs.tar.gz")
    args = ap.parse_args(argv)
    parts = [p for p in args.parts.split(",") if p]
    unknown = [p for p in parts if p not in PARTS]
    if unknown:
        ap.error(f"--parts: unknown part {unknown[0]!r}; choose from {', '.join(PARTS)}")
    out, runs = Path(args.out), Path(args.runs_dir)
    archive = out.with_name(out.name + "_runs.tar.gz")
    if archive.exists():  # a later session: restore what an earlier one finished
        runs.mkdir(parents=True, exist_ok=True)
        with tarfile.open(archive, "r:gz") as tar:
            tar.extractall(runs, members=[m for m in tar.getmembers()
                                          if not (runs / m.name.split("/")[0] / "result.json").exists()], filter="data")
    previous = json.loads(out.with_suffix(".json").read_text()) if out.with_suffix(".json").exists() else {}
    started = time.time()
    if not args.rebuild:
        for name in parts:
            run_part(name, args)
    folders = sorted(p.parent for p in runs.glob("*/result.json"))
    rows = [r for r in (cell(p) for p in folders) if r is not None]
    spent = previous.get("total_wall_s", 0.0) + (0.0 if args.rebuild else time.time() - started)
    report = {"command": previous.get("command") if args.rebuild and previous else
              "python " + " ".join([sys.argv[0], *sys.argv[1:]]),
              "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.platform()}",
              "git_commit": previous.get("git_commit") if args.rebuild and previous else git_commit(),
              "parts": sorted({*previous.get("parts", []), *parts}),
              "total_wall_s": round(spent, 1), "rows": rows}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    board = build_leaderboard(folders)
    out.with_suffix(".md").write_text(markdown(report, learning_curves_markdown(board)))
    out.with_suffix(".html").write_text(render_html(board), encoding="utf-8")
    if args.pack:
        with tarfile.open(archive, "w:gz") as tar:  # without the adapters' weights: the report needs none
            for p in folders:
                tar.add(p, arcname=p.name, filter=lambda m: None if "/adapter" in f"/{m.name}" else m)
    print(out.with_suffix(".md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
