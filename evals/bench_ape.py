"""APE benchmark: per task, test accuracy and gold log-probability of (a) no instruction,
(b) the best human instruction chosen on dev, (c) APE's best, with bootstrap 95% intervals,
model calls and wall time.

Usage (the committed results were made with the command in evals/README.md):

    python evals/bench_ape.py --data-dir ../shared/data/instruction_induction \
        --tasks all --out evals/results/ape_smollm2

``--tasks all`` means the 12 instruction-induction tasks under --data-dir plus the bundled
tasks. Results go to OUT.json and OUT.md; each task's run stays under --runs-dir.
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
from optimizer.tasks.task import list_tasks

KINDS = ("no_instruction", "best_human", "best")


def _ci(values: list[float]) -> list[float] | None:
    return [round(v, 4) for v in bootstrap_ci(values)] if values else None


def summarize(result) -> dict:
    """The benchmark row of one run."""
    prompts = {p.name: p for p in ([result.best] if result.best else []) + list(result.baselines)}
    row = {"task": result.task, "run_id": result.run_id, "status": result.status, "calls": result.calls,
           "tokens": result.tokens, "wall_s": result.timings.get("total_s"), "prompts": {}}
    for kind in KINDS:
        p = prompts.get(kind)
        if p is None or p.test is None:
            continue
        row["prompts"][kind] = {
            "text": p.text, "dev_acc": p.dev.acc, "dev_lp": p.dev.lp,
            "test_acc": p.test.acc, "test_acc_ci": _ci(p.test_acc),
            "test_lp": p.test.lp, "test_lp_ci": _ci(p.test_lp), "n": p.test.n,
        }
    best = prompts.get("best")
    for name, other in (("vs_none", prompts.get("no_instruction")), ("vs_human", prompts.get("best_human"))):
        if best and other and best.test_acc and len(best.test_acc) == len(other.test_acc):
            diff = sum(best.test_acc) / len(best.test_acc) - sum(other.test_acc) / len(other.test_acc)
            row[name] = {"acc_diff": round(diff, 4),
                         "acc_diff_ci": [round(v, 4) for v in paired_bootstrap_ci(best.test_acc, other.test_acc)]}
    return row


def _f(v, d=3):
    return "-" if v is None else f"{v:.{d}f}"


def _cell(p: dict | None) -> str:
    if not p:
        return "-"
    lo, hi = p["test_acc_ci"] or (None, None)
    return f"{_f(p['test_acc'], 2)} [{_f(lo, 2)}, {_f(hi, 2)}]"


def markdown(report: dict) -> str:
    """The report as a Markdown table with a summary line."""
    rows = report["rows"]
    lines = [f"# APE benchmark: {report['target']} (proposer {report['proposer']})", "",
             f"Command: `{report['command']}`", "",
             f"Machine: {report['machine']}; apo commit {report['git_commit']}; seed {report['seed']}; "
             f"total wall time {report['total_wall_s']:.0f} s.", "",
             "Test accuracy with bootstrap 95% interval; mean gold log-probability (logp) on test.", "",
             "| task | n | no instruction | best human (dev) | APE best | logp none / human / APE | "
             "APE − none [95% CI] | APE − human [95% CI] | calls | wall s | APE instruction |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        p = r["prompts"]
        lps = " / ".join(_f((p.get(k) or {}).get("test_lp"), 2) for k in KINDS)

        def diff(name, r=r):
            d = r.get(name)
            return "-" if not d else f"{d['acc_diff']:+.2f} [{d['acc_diff_ci'][0]:+.2f}, {d['acc_diff_ci'][1]:+.2f}]"

        text = (p.get("best") or {}).get("text", "").replace("|", "\\|")
        lines.append(f"| {r['task']} | {(p.get('best') or {}).get('n', '-')} | {_cell(p.get('no_instruction'))} | "
                     f"{_cell(p.get('best_human'))} | {_cell(p.get('best'))} | {lps} | {diff('vs_none')} | "
                     f"{diff('vs_human')} | {r['calls']} | {_f(r['wall_s'], 0)} | {text} |")
    s = report["summary"]
    lines += ["", f"APE beats no instruction on {s['beats_none']} of {s['tasks']} tasks; matches or beats the best "
              f"human instruction on {s['ties_or_beats_human']} of {s['tasks']} (test accuracy, point estimates)."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", help="instruction-induction folder (induce/, execute/, annotations/)")
    ap.add_argument("--tasks", default="all", help="comma-separated task names, or 'all', 'induction', 'bundled'")
    ap.add_argument("--target", default="embedded")
    ap.add_argument("--proposer", default=None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--candidates", type=int, default=8)
    ap.add_argument("--top-k", type=int, default=2)
    ap.add_argument("--variations", type=int, default=3)
    ap.add_argument("--dev-size", type=int, default=30)
    ap.add_argument("--test-size", type=int, default=None)
    ap.add_argument("--scoring", default="accuracy", choices=["accuracy", "logprob"])
    ap.add_argument("--budget-time", type=float, default=None, help="seconds of search per task")
    ap.add_argument("--runs-dir", default="runs/bench")
    ap.add_argument("--no-cache", action="store_true", help="ignore the response cache (every call reaches the model)")
    ap.add_argument("--out", required=True, help="output path without extension (.json and .md are written)")
    ap.add_argument("--rebuild", action="store_true",
                    help="re-summarise the runs listed in OUT.json from their result.json files (no model calls)")
    args = ap.parse_args(argv)
    out = Path(args.out)
    if args.rebuild:
        from optimizer.types import RunResult

        report = json.loads(out.with_suffix(".json").read_text())
        rows = []
        for old_row in report["rows"]:
            stored = json.loads((Path(args.runs_dir) / old_row["run_id"] / "result.json").read_text())
            rows.append(summarize(RunResult.model_validate({k: v for k, v in stored.items() if k != "schema"})))
        report["rows"] = rows
        report["summary"] = _summary(rows)
        out.with_suffix(".json").write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
        out.with_suffix(".md").write_text(markdown(report))
        print(markdown(report))
        return 0

    infos = list_tasks(args.data_dir)
    induction = [i.name for i in infos if i.kind == "instruction_induction"]
    bundled = [i.name for i in infos if i.kind == "yaml"]
    names = {"all": induction + bundled, "induction": induction, "bundled": bundled}.get(
        args.tasks, [t for t in args.tasks.split(",") if t])
    rows, started = [], time.time()
    out.parent.mkdir(parents=True, exist_ok=True)
    for name in names:
        print(f"== {name}", file=sys.stderr, flush=True)
        result = optimize(name, data_dir=args.data_dir, target=args.target, proposer=args.proposer, seed=args.seed,
                          rounds=args.rounds, candidates=args.candidates, top_k=args.top_k,
                          variations=args.variations, dev_limit=args.dev_size,
                          test_limit=args.test_size, scoring=args.scoring, runs_dir=args.runs_dir,
                          cache=not args.no_cache,
                          budget={"max_seconds": args.budget_time} if args.budget_time else None)
        rows.append(summarize(result))
        r = rows[-1]["prompts"]
        print(f"   none {_cell(r.get('no_instruction'))}  human {_cell(r.get('best_human'))}  "
              f"APE {_cell(r.get('best'))}  {rows[-1]['wall_s']}s", file=sys.stderr, flush=True)
        _write(out, args, rows, started)
    _write(out, args, rows, started)
    print(markdown(json.loads(out.with_suffix(".json").read_text())))
    return 0


def _summary(rows: list[dict]) -> dict:
    def acc(r, k):
        return (r["prompts"].get(k) or {}).get("test_acc")

    scored = [r for r in rows if acc(r, "best") is not None]
    return {
        "tasks": len(scored),
        "beats_none": sum(acc(r, "best") > (acc(r, "no_instruction") or 0) for r in scored),
        "ties_or_beats_human": sum(acc(r, "best") >= (acc(r, "best_human") or 0) for r in scored),
    }


def _write(out: Path, args, rows: list[dict], started: float) -> None:
    report = {
        "command": "python " + " ".join([sys.argv[0], *sys.argv[1:]]),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.platform()}",
        "git_commit": git_commit(), "target": args.target, "proposer": args.proposer or args.target,
        "seed": args.seed, "total_wall_s": round(time.time() - started, 1), "rows": rows,
        "summary": _summary(rows),
    }
    out.with_suffix(".json").write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    out.with_suffix(".md").write_text(markdown(report))


if __name__ == "__main__":
    sys.exit(main())
