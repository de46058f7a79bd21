"""Search benchmark: does the shipped prompt beat the incumbent on test, per task, searcher and seed?

For every task: the default searcher on each seed, and every other searcher on the first seed,
all under the same model-call budget per job, embedded target and proposer. Per job: test
accuracy (bootstrap 95% interval) of the shipped prompt, the incumbent (the best human
instruction chosen on dev) and no instruction; the paired differences against the incumbent
and against no instruction (bootstrap 95% interval over the same test examples); the verdict;
calls and wall time.

Usage (the committed results were made with the commands in evals/README.md):

    python evals/bench_search.py --data-dir ../shared/data/instruction_induction \\
        --out evals/results/search_smollm2

It may run across sessions: each finished job is written to OUT.json at once, a job found in
OUT.json is skipped, and a job whose run folder exists without a result (killed) is resumed
from its journal. Before the first job of a task and seed, a job with no search scores the
baselines into the response cache, so that each searcher's budget pays for its own search,
confirmation and test alone. ``--rebuild`` re-summarises OUT.json from the run folders without calling a
model; ``--html`` also writes the leaderboard of every run as OUT.html; ``--pack`` keeps the
finished runs' folders in OUT_runs.tar.gz, from which a later session on another machine
restores them (the runs folder is not kept between machines).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import sqlite3
import sys
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from optimizer import optimize, resume
from optimizer.models.cache import cache_dir
from optimizer.report.stats import bootstrap_ci, paired_bootstrap_ci
from optimizer.run.provenance import git_commit
from optimizer.tasks.nearest import nearest_k
from optimizer.tasks.task import list_tasks
from optimizer.types import RunResult, ScoredPrompt

SEARCHERS = ("ape", "demos", "joint", "reflect")


def _ci(values: list[float]) -> list[float] | None:
    return [round(v, 4) for v in bootstrap_ci(values)] if values else None


def _prompt(p: ScoredPrompt | None) -> dict | None:
    if p is None or p.test is None:
        return None
    near = nearest_k(p.demos)  # each input's k nearest: "k nearest"
    demos = None if p.demos is None else f"{near} nearest" if near is not None else len(p.demos)
    return {"candidate": p.candidate, "text": p.text, "demos": demos,
            "test_acc": p.test.acc, "test_acc_ci": _ci(p.test_acc), "n": p.test.n, "dev_acc": p.dev.acc,
            "confirm_acc": p.confirm.acc if p.confirm else None, "prompt_tokens": p.prompt_tokens}


def _diff(a: ScoredPrompt | None, b: ScoredPrompt | None) -> dict | None:
    if a is None or b is None or not a.test_acc or len(a.test_acc) != len(b.test_acc):
        return None
    diff = sum(a.test_acc) / len(a.test_acc) - sum(b.test_acc) / len(b.test_acc)
    return {"acc_diff": round(diff, 4), "acc_diff_ci": [round(v, 4) for v in paired_bootstrap_ci(a.test_acc,
                                                                                                 b.test_acc)]}


def load_result(run: Path) -> RunResult:
    """A finished run's result.json, as the engine wrote it."""
    stored = json.loads((run / "result.json").read_text())
    return RunResult.model_validate({k: v for k, v in stored.items() if k != "schema"})


def summarize(result: RunResult) -> dict[str, Any]:
    """The benchmark row of one run."""
    rows = {p.name: p for p in result.baselines}
    inc = result.incumbent_prompt()
    sel = result.selection
    return {
        "task": result.task, "searcher": result.searcher, "seed": result.seed, "run_id": result.run_id,
        "status": result.status, "calls": result.calls, "tokens": result.tokens,
        "wall_s": result.timings.get("total_s"), "verdict": sel.verdict if sel else None,
        "shipped_is_incumbent": bool(sel and result.best and result.best.candidate == sel.incumbent),
        "p_values": [t.p_adjusted for t in sel.finalists] if sel else [],
        "sizes": sel.sizes if sel else {},
        "shipped": _prompt(result.best), "incumbent": _prompt(inc), "none": _prompt(rows.get("no_instruction")),
        "vs_incumbent": _diff(result.best, inc), "vs_none": _diff(result.best, rows.get("no_instruction")),
        # the best candidate on dev when confirmation did not ship it: what the test held back, for better or worse
        "best_dev": _prompt(rows.get("best_dev")), "best_dev_vs_incumbent": _diff(rows.get("best_dev"), inc),
    }


def _above(d: dict | None) -> bool:
    return bool(d) and d["acc_diff_ci"][0] > 0


def _below(d: dict | None) -> bool:
    return bool(d) and d["acc_diff_ci"][1] < 0


def summary(rows: list[dict], default: str) -> dict[str, Any]:
    """Counts per (searcher, seed): shipped prompt significantly better / worse than the incumbent on test."""
    out: dict[str, Any] = {}
    for key in sorted({(r["searcher"], r["seed"]) for r in rows}):
        mine = [r for r in rows if (r["searcher"], r["seed"]) == key and r["vs_incumbent"]]
        out[f"{key[0]} seed {key[1]}"] = {
            "tasks": len(mine),
            "better_than_incumbent": sum(_above(r["vs_incumbent"]) for r in mine),
            "worse_than_incumbent": sum(_below(r["vs_incumbent"]) for r in mine),
            "better_than_none": sum(_above(r["vs_none"]) for r in mine),
            "improved_verdicts": sum(r["verdict"] == "improved" for r in mine),
            # the incumbent kept, and the best candidate on dev significantly better / worse than it on test
            "held_back_better": sum(_above(r["best_dev_vs_incumbent"]) for r in mine if r["shipped_is_incumbent"]),
            "held_back_worse": sum(_below(r["best_dev_vs_incumbent"]) for r in mine if r["shipped_is_incumbent"]),
            "no_improvement_ships_incumbent": all(r["shipped_is_incumbent"] for r in mine
                                                  if r["verdict"] == "no significant improvement"),
            "wall_s": round(sum(r["wall_s"] or 0 for r in mine), 1), "calls": sum(r["calls"] for r in mine),
        }
    out["default"] = default
    return out


def _f(v: float | None, d: int = 2) -> str:
    return "-" if v is None else f"{v:.{d}f}"


def _cell(p: dict | None) -> str:
    if not p:
        return "-"
    lo, hi = p["test_acc_ci"] or (None, None)
    return f"{_f(p['test_acc'])} [{_f(lo)}, {_f(hi)}]"


def _dcell(d: dict | None) -> str:
    return "-" if not d else f"{d['acc_diff']:+.2f} [{d['acc_diff_ci'][0]:+.2f}, {d['acc_diff_ci'][1]:+.2f}]"


def markdown(report: dict) -> str:
    """The report as Markdown: the summary per searcher and seed, then one row per job."""
    lines = [f"# Search benchmark: {report['target']} (proposer {report['proposer']})", "",
             f"Command: `{report['command']}`", "",
             f"Machine: {report['machine']}; apo commit {report['git_commit']}; budget {report['max_calls']} model "
             f"calls per job; default searcher {report['default']}; total wall time {report['total_wall_s']:.0f} s.",
             "", "| searcher, seed | tasks | better than incumbent (95% CI > 0) | worse than incumbent (CI < 0) | "
             "better than none | verdict improved | no-improvement runs ship the incumbent | incumbent kept, best on "
             "dev better / worse | calls | wall s |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for key, s in report["summary"].items():
        if key == "default":
            continue
        lines.append(f"| {key} | {s['tasks']} | {s['better_than_incumbent']} | {s['worse_than_incumbent']} | "
                     f"{s['better_than_none']} | {s['improved_verdicts']} | "
                     f"{'yes' if s['no_improvement_ships_incumbent'] else 'NO'} | "
                     f"{s['held_back_better']} / {s['held_back_worse']} | {s['calls']} | "
                     f"{s['wall_s']:.0f} |")
    lines += ["", "Test accuracy with bootstrap 95% interval; differences paired over the same test examples. "
              "demos: the shipped prompt's own demonstrations (k; 'k nearest': each input's k most alike "
              "training examples), or '-' for the run's fixed ones. Best on dev "
              "− incumbent: the best raced candidate on dev when the confirmation test did not ship it (what the "
              "test held back), on test.", "",
              "| task | searcher | seed | n | no instruction | incumbent (best human on dev) | shipped | "
              "shipped − incumbent | shipped − none | verdict | best on dev − incumbent | demos | calls | wall s | "
              "shipped instruction |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in sorted(report["rows"], key=lambda r: (r["task"], r["searcher"], r["seed"])):
        shipped = r["shipped"] or {}
        text = (shipped.get("text") or "(no instruction)").replace("|", "\\|")
        k = shipped.get("demos")
        lines.append(f"| {r['task']} | {r['searcher']} | {r['seed']} | {shipped.get('n', '-')} | {_cell(r['none'])} | "
                     f"{_cell(r['incumbent'])} | {_cell(r['shipped'])} | {_dcell(r['vs_incumbent'])} | "
                     f"{_dcell(r['vs_none'])} | {r['verdict']} | {_dcell(r['best_dev_vs_incumbent'])} | "
                     f"{'-' if k is None else k} | {r['calls']} | "
                     f"{_f(r['wall_s'], 0)} | {text} |")
    return "\n".join(lines) + "\n"


def jobs(tasks: list[str], searchers: list[str], default: str, seeds: list[int]) -> list[tuple[str, str, int]]:
    """(task, searcher, seed): the default searcher on every seed, the others on the first."""
    return [(t, s, seed) for t in tasks for s in searchers for seed in (seeds if s == default else seeds[:1])]


def _unfinished(runs_dir: Path, task: str, searcher: str, seed: int, max_calls: int) -> str | None:
    """The id of a run of this job that was started and never finished (it is resumed, not restarted)."""
    for config_path in sorted(runs_dir.glob("*/config.json")):
        if (config_path.parent / "result.json").exists():
            continue
        config = json.loads(config_path.read_text()).get("config", {})
        if (config.get("searcher"), config.get("seed"), (config.get("budget") or {}).get("max_calls")) == \
                (searcher, seed, max_calls) and config.get("task") == task:
            return config_path.parent.name
    return None


class Baselines:
    """A searcher that searches nothing: its job scores only the baselines (no instruction, the human
    instructions raced, the incumbent) on dev and test, so that they enter the response cache once per task and
    seed, and every searcher's budget then pays for its own search, confirmation and test alone."""

    name = "baselines"
    requires = frozenset({"generate"})

    def run(self, ctx: Any) -> None:
        """Nothing to search."""


@contextlib.contextmanager
def _cache(folder: Path, seed_from: Path | None = None) -> Iterator[None]:
    """Run the body with the response cache in FOLDER (APO_CACHE_DIR), the model folders shared with the user's
    cache; a new FOLDER starts as a copy of SEED_FROM's responses (SQLite backup, consistent under WAL)."""
    shared = cache_dir()
    if not folder.exists():
        folder.mkdir(parents=True)
        for name in ("models", "converted"):
            (shared / name).mkdir(parents=True, exist_ok=True)
            (folder / name).symlink_to((shared / name).resolve(), target_is_directory=True)
        if seed_from is not None:
            src, dst = sqlite3.connect(seed_from / "responses.sqlite"), sqlite3.connect(folder / "responses.sqlite")
            with dst:
                src.backup(dst)
            src.close()
            dst.close()
    before = os.environ.get("APO_CACHE_DIR")
    os.environ["APO_CACHE_DIR"] = str(folder)
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("APO_CACHE_DIR", None)
        else:
            os.environ["APO_CACHE_DIR"] = before


def _cache_root(args: argparse.Namespace, task: str, seed: int) -> Path:
    return Path(args.runs_dir) / "cache" / f"{task}-seed{seed}"


def warm_up(args: argparse.Namespace, task: str, seed: int) -> None:
    """Score the baselines of (task, seed) once, into the task and seed's warm cache (runs under
    RUNS_DIR/baselines); a warm cache already there is kept."""
    warm = _cache_root(args, task, seed) / "warm"
    if (warm / "done").exists():
        return
    with _cache(warm):
        optimize(task, data_dir=args.data_dir, target=args.target, proposer=args.proposer, seed=seed,
                 searcher=Baselines(), runs_dir=Path(args.runs_dir) / "baselines", test_limit=args.test_size)
    (warm / "done").write_text("")


def run_job(args: argparse.Namespace, task: str, searcher: str, seed: int) -> RunResult:
    """One job, in its own copy of the warm cache: resumed from its journal when a killed run of it exists,
    else started."""
    runs_dir = Path(args.runs_dir)
    root = _cache_root(args, task, seed)
    with _cache(root / searcher, seed_from=root / "warm"):
        unfinished = _unfinished(runs_dir, task, searcher, seed, args.max_calls) if runs_dir.exists() else None
        if unfinished:
            print(f"   resuming {unfinished}", file=sys.stderr, flush=True)
            return resume(unfinished, runs_dir=runs_dir)
        return optimize(task, data_dir=args.data_dir, target=args.target, proposer=args.proposer, seed=seed,
                        searcher=searcher, runs_dir=runs_dir, max_calls=args.max_calls, test_limit=args.test_size,
                        **json.loads(args.set or "{}"))


def _write(out: Path, args: argparse.Namespace, rows: list[dict], spent: float, previous: dict | None = None,
           merged: dict[str, float] | None = None) -> None:
    """OUT.json and OUT.md; a rebuild keeps the command, commit and budget the runs were made with."""
    previous = previous or {}
    report = {
        "command": previous.get("command") or "python " + " ".join([sys.argv[0], *sys.argv[1:]]),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.platform()}",
        "git_commit": previous.get("git_commit") or git_commit(), "target": args.target,
        "proposer": args.proposer or args.target, "max_calls": previous.get("max_calls") or args.max_calls,
        "default": args.default, "total_wall_s": round(spent, 1), "merged": sorted(merged or {}),
        "merged_wall_s": merged or {}, "rows": rows,
        "summary": summary(rows, args.default),
    }
    out.with_suffix(".json").write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    out.with_suffix(".md").write_text(markdown(report))


def _archive(out: Path) -> Path:
    return out.with_name(out.name + "_runs.tar.gz")


def pack(out: Path, runs_dir: Path, rows: list[dict]) -> None:
    """Keep the finished runs' folders beside the report (runs/ is not kept between machines): OUT_runs.tar.gz."""
    with tarfile.open(_archive(out), "w:gz") as tar:
        for r in rows:
            tar.add(runs_dir / r["run_id"], arcname=r["run_id"])


def unpack(out: Path, runs_dir: Path, rows: list[dict]) -> None:
    """Restore from OUT_runs.tar.gz the run folders of finished jobs that RUNS_DIR lacks."""
    missing = {r["run_id"] for r in rows if not (runs_dir / r["run_id"] / "result.json").exists()}
    if missing and _archive(out).exists():
        runs_dir.mkdir(parents=True, exist_ok=True)
        with tarfile.open(_archive(out), "r:gz") as tar:
            tar.extractall(runs_dir, members=[m for m in tar.getmembers() if m.name.split("/")[0] in missing],
                           filter="data")


def _html(out: Path, runs_dir: Path, rows: list[dict]) -> None:
    from optimizer.report.build import build_leaderboard
    from optimizer.report.html import render_html

    board = build_leaderboard([runs_dir / r["run_id"] for r in rows])
    out.with_suffix(".html").write_text(render_html(board), encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", help="instruction-induction folder (induce/, execute/, annotations/)")
    ap.add_argument("--tasks", default="all", help="comma-separated task names, or 'all', 'induction', 'bundled'")
    ap.add_argument("--searchers", default=",".join(SEARCHERS), help="comma-separated searchers")
    ap.add_argument("--default", default="ape", help="the searcher run on every seed")
    ap.add_argument("--seeds", default="0,1,2", help="seeds of the default searcher (the others run the first)")
    ap.add_argument("--target", default="embedded")
    ap.add_argument("--proposer", default=None)
    ap.add_argument("--max-calls", type=int, default=2000, help="model-call budget of every job")
    ap.add_argument("--test-size", type=int, default=None)
    ap.add_argument("--set", help="more options of every searcher job, as JSON (e.g. '{\"k\": [2, 4, 8]}'; "
                                  "the baselines' warm-up runs without them)")
    ap.add_argument("--runs-dir", default="runs/bench_search")
    ap.add_argument("--out", required=True, help="output path without extension (.json and .md are written)")
    ap.add_argument("--rebuild", action="store_true", help="re-summarise OUT.json from the run folders (no model call)")
    ap.add_argument("--html", action="store_true", help="also write the leaderboard of every run as OUT.html")
    ap.add_argument("--pack", action="store_true",
                    help="also keep the finished runs' folders in OUT_runs.tar.gz (restored from it when missing)")
    ap.add_argument("--merge", action="append", default=[], metavar="OTHER",
                    help="also take the jobs of another report (OTHER.json, its runs restored from "
                         "OTHER_runs.tar.gz), e.g. one made by a second process on other tasks; repeatable")
    args = ap.parse_args(argv)
    out, runs_dir = Path(args.out), Path(args.runs_dir)
    out.parent.mkdir(parents=True, exist_ok=True)
    previous = json.loads(out.with_suffix(".json").read_text()) if out.with_suffix(".json").exists() else None
    rows: list[dict] = []
    spent = previous["total_wall_s"] if previous else 0.0
    if previous:
        unpack(out, runs_dir, previous["rows"])
        for old in previous["rows"]:
            rows.append(summarize(load_result(runs_dir / old["run_id"])))
    merged: dict[str, float] = dict(previous.get("merged_wall_s") or {}) if previous else {}
    for other in map(Path, args.merge):
        more = json.loads(other.with_suffix(".json").read_text())
        spent += more["total_wall_s"] - merged.get(other.name, 0.0)  # its time counts once, and what it added since
        merged[other.name] = more["total_wall_s"]
        unpack(other, runs_dir, more["rows"])
        have = {(r["task"], r["searcher"], r["seed"]) for r in rows}
        for old in more["rows"]:
            if (old["task"], old["searcher"], old["seed"]) not in have:
                rows.append(summarize(load_result(runs_dir / old["run_id"])))
    if not args.rebuild:
        infos = list_tasks(args.data_dir)
        induction = [i.name for i in infos if i.kind == "instruction_induction"]
        bundled = [i.name for i in infos if i.kind == "yaml"]
        names = {"all": induction + bundled, "induction": induction, "bundled": bundled}.get(
            args.tasks, [t for t in args.tasks.split(",") if t])
        done = {(r["task"], r["searcher"], r["seed"]) for r in rows}
        seeds = [int(s) for s in args.seeds.split(",")]
        warm: set[tuple[str, int]] = set()
        for task, searcher, seed in jobs(names, args.searchers.split(","), args.default, seeds):
            if (task, searcher, seed) in done:
                continue
            started = time.time()
            if (task, seed) not in warm:
                print(f"== {task} seed {seed}: baselines into the warm cache", file=sys.stderr, flush=True)
                warm_up(args, task, seed)
                warm.add((task, seed))
            print(f"== {task} {searcher} seed {seed}", file=sys.stderr, flush=True)
            rows.append(summarize(run_job(args, task, searcher, seed)))
            spent += time.time() - started
            r = rows[-1]
            print(f"   incumbent {_cell(r['incumbent'])}  shipped {_cell(r['shipped'])}  "
                  f"{_dcell(r['vs_incumbent'])}  {r['verdict']}  {r['wall_s']}s", file=sys.stderr, flush=True)
            _write(out, args, rows, spent, merged=merged)
    _write(out, args, rows, spent, previous if previous and args.rebuild else None, merged)
    if args.pack:
        pack(out, runs_dir, rows)
    if args.html:
        _html(out, runs_dir, rows)
    print(markdown(json.loads(out.with_suffix(".json").read_text())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
