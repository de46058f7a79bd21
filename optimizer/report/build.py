"""Leaderboard: the best prompt per (task, searcher, target model, training limit) across runs, as data.

:func:`build_leaderboard` reads run folders (``config.json``, ``events.jsonl``, ``result.json``)
and returns a :class:`Leaderboard` of pydantic models (defined in ``optimizer.report.models``);
``optimizer.report.text`` renders it for the terminal and as Markdown, ``optimizer.report.html``
as one self-contained HTML page.

Rows are sorted by task name, then test accuracy of the best prompt (highest first; rows with
no test score last), then searcher, then target model. Within a row, the best prompt is the
one with the highest dev score (dev accuracy, then dev log-probability; the dev log-probability
first for runs scored by log-probability) over the row's finished runs, never by test score.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from optimizer.config import migrate_config
from optimizer.errors import ApoError, UsageError
from optimizer.report.models import (
    SORT_ORDER,
    Comparison,
    Leaderboard,
    LeaderboardRow,
    LineageStep,
    RunSummary,
    SeedSpread,
    SkippedRun,
    WrongExample,
    WrongExamples,
)
from optimizer.report.stats import bootstrap_ci, paired_bootstrap_ci
from optimizer.run.history import candidates_from_log, dev_trajectory, usage_from_log
from optimizer.run.racing import rank_key
from optimizer.run.store import RunStore, runs_dir
from optimizer.tasks.nearest import nearest_k
from optimizer.types import Candidate, RunResult, prompt_key

__all__ = [
    "Comparison",
    "Leaderboard",
    "LeaderboardRow",
    "LineageStep",
    "RunSummary",
    "SORT_ORDER",
    "SeedSpread",
    "SkippedRun",
    "WrongExample",
    "WrongExamples",
    "build_leaderboard",
    "find_runs",
    "lineage",
    "summarize_run",
    "word_diff",
    "wrong_test_examples",
]

# config fields that do not change what a run searches for (seeds are summarised, not split on)
_NOT_CONFIGURATION = {"seed", "cache", "concurrency", "score_batch_size", "base_url", "prices", "schema"}


# -- reading runs ----------------------------------------------------------------------------

def find_runs(paths: Sequence[str | Path]) -> list[Path]:
    """Run folders under ``paths``: each path is a run folder or a folder of run folders.

    Raises:
        UsageError: when a path does not exist or holds no run.
    """
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if not path.is_dir():
            raise UsageError(f"runs folder {str(path)!r} does not exist; pass the folder your jobs wrote to "
                             "(default: $APO_RUNS_DIR or ./runs) or a run folder")
        if (path / "config.json").exists():
            found.append(path)
            continue
        inside = sorted(p.parent for p in path.glob("*/config.json"))
        if not inside:
            raise UsageError(f"no runs in {str(path)!r} (no <run>/config.json); run `apo optimize TASK` first "
                             "or pass the folder your jobs wrote to")
        found.extend(inside)
    return list(dict.fromkeys(found))


def _fingerprint(config: dict) -> str:
    kept = {k: v for k, v in migrate_config(config).items() if k not in _NOT_CONFIGURATION}
    return hashlib.sha256(json.dumps(kept, sort_keys=True).encode()).hexdigest()[:12]


def _round_ci(ci: tuple[float, float]) -> tuple[float, float]:
    return (round(ci[0], 4), round(ci[1], 4))


def _comparison(best, base) -> Comparison:
    test = base.test
    diff = (best.test.acc - test.acc) if (best.test and test and best.test.acc is not None
                                          and test.acc is not None) else None
    ci = (_round_ci(paired_bootstrap_ci(best.test_acc, base.test_acc))
          if best.test_acc and len(best.test_acc) == len(base.test_acc) else None)
    return Comparison(baseline=base.name, text=base.text, test_acc=test.acc if test else None, diff=diff, ci=ci,
                      n=len(base.test_acc))


def summarize_run(path: str | Path) -> RunSummary:
    """Read one run folder into a :class:`RunSummary` (finished, partial or interrupted).

    Args:
        path: the run folder.

    Returns:
        The summary, with bootstrap intervals and the paired comparisons against the baselines.
    """
    store = RunStore(Path(path))
    stored = store.read_config()
    config = stored.get("config", stored)
    events = list(store.log.replay())
    data = store.read_result()
    base = dict(run_id=store.id, run_dir=str(store.path), searcher=config.get("searcher", "ape"),
                target=config.get("target", "?"), proposer=config.get("proposer") or config.get("target", "?"),
                seed=int(config.get("seed", 0)), scoring=config.get("scoring", "accuracy"),
                configuration=_fingerprint(config), trajectory=dev_trajectory(events),
                train_limit=config.get("train_limit"))
    if data is None:
        task = (stored.get("provenance", {}).get("task", {}) or {}).get("name") or config.get("task", "?")
        calls, tokens, elapsed = usage_from_log(events)
        cands = candidates_from_log(events, base["scoring"])
        top = cands[0] if cands else None
        return RunSummary(**base, task=task, status="running" if store.holder is not None else "interrupted",
                          calls=calls, tokens=tokens, wall_s=elapsed,
                          best_text=top.text if top else None, best_candidate=top.id if top else None,
                          dev=top.dev if top else None, demos=top.demos if top else None, candidates=cands)
    result = RunResult.model_validate({k: v for k, v in data.items() if k != "schema"})
    best = result.best
    baselines = {b.name: b for b in result.baselines}
    summary = RunSummary(
        **{**base, "searcher": result.searcher, "target": result.target, "proposer": result.proposer,
           "seed": result.seed},
        task=result.task, status=result.status, stop_reason=result.stop_reason,
        best_text=best.text if best else None, best_candidate=best.candidate if best else None,
        dev=best.dev if best else None, test=best.test if best else None,
        calls=result.calls, tokens=result.tokens,
        cost_usd=result.cost_usd if "cost_usd" in data else None,
        wall_s=result.timings.get("total_s"), candidates=result.candidates,
    )
    if best is not None and best.test is not None and best.test_acc:
        summary.test_ci = _round_ci(bootstrap_ci(best.test_acc))
        if "no_instruction" in baselines:
            summary.vs_none = _comparison(best, baselines["no_instruction"])
        if "best_human" in baselines:
            summary.vs_human = _comparison(best, baselines["best_human"])
    _add_selection(summary, result, data)
    _add_training(summary, events)
    return summary


def _add_training(summary: RunSummary, events: list) -> None:
    """A trained searcher's figures for its shipped checkpoint (none when a written prompt shipped)."""
    from optimizer.run.events import TrainingCheckpoint

    marks = {e.candidate: e for e in events if isinstance(e, TrainingCheckpoint)}
    mark = marks.get(summary.best_candidate or "")
    if mark is not None:
        summary.trainable_params, summary.train_examples = mark.trainable_params, mark.train_examples
        summary.train_s = round(mark.train_seconds, 1)
        summary.demos, summary.demos_k = None, 0  # the adapter replaces the demonstrations


def _add_selection(summary: RunSummary, result: RunResult, data: dict) -> None:
    """The verdict, the comparison with the incumbent on test, the shipped prompt's demonstrations and length, and
    the accuracy × prompt-tokens Pareto front."""
    best = result.best
    if "pareto" in data:  # runs written before prompt lengths were recorded have no front
        summary.pareto = result.pareto
    if best is not None:
        summary.prompt_tokens, summary.tokens_per_example = best.prompt_tokens, best.tokens_per_example
        summary.demos = best.demos
        recorded = best.demos is not None or "demo_examples" in (data.get("best") or {})
        summary.demos_k = (nearest_k(best.demos) or len(best.demos)) if best.demos is not None else (
            len(best.demo_examples) if recorded else None)
    if result.selection is None:
        return
    summary.selection, summary.verdict = result.selection, result.selection.verdict
    summary.train_examples = result.selection.sizes.get("train")
    incumbent = result.incumbent_prompt()
    if best is not None and best.test is not None and best.test_acc and incumbent is not None \
            and incumbent.test is not None:
        summary.vs_incumbent = _comparison(best, incumbent)


# -- lineage ---------------------------------------------------------------------------------

def word_diff(old: str, new: str) -> list[tuple[Literal["same", "add", "del"], str]]:
    """Word-level differences turning ``old`` into ``new`` (runs of equal, added and deleted words)."""
    a, b = old.split(), new.split()
    out: list[tuple[Literal["same", "add", "del"], str]] = []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_opcodes():
        if op == "equal":
            out.append(("same", " ".join(a[i1:i2])))
            continue
        if i2 > i1:
            out.append(("del", " ".join(a[i1:i2])))
        if j2 > j1:
            out.append(("add", " ".join(b[j1:j2])))
    return out


def lineage(candidates: Sequence[Candidate], best_id: str | None) -> list[LineageStep]:
    """The chain of parents from the first proposal down to ``best_id``, with word differences.

    Args:
        candidates: the run's candidates (``parent`` links variations to what they vary).
        best_id: the winner's candidate id.

    Returns:
        Steps from the root to the winner; empty when ``best_id`` is not among the candidates.
    """
    by_id = {c.id: c for c in candidates}
    chain: list[Candidate] = []
    cid = best_id
    while cid is not None and cid in by_id and by_id[cid] not in chain:
        chain.append(by_id[cid])
        cid = by_id[cid].parent
    chain.reverse()
    steps = []
    for i, c in enumerate(chain):
        diff = word_diff(chain[i - 1].text, c.text) if i else []
        steps.append(LineageStep(id=c.id, text=c.text, origin=c.origin, round=c.round, dev=c.dev, demos=c.demos,
                                 diff=diff))
    return steps


# -- the leaderboard -------------------------------------------------------------------------

def _sum(values: list[float | int | None]):
    return None if not values or any(v is None for v in values) else sum(values)


def _row(runs: list[RunSummary]) -> LeaderboardRow:
    finished = [r for r in runs if r.status not in ("interrupted", "running") and r.best_text is not None]
    pool = finished or runs
    # max() keeps the first of equals: ties go to the earliest run id
    winner = max(sorted(pool, key=lambda r: r.run_id), key=lambda r: (rank_key(r.dev, r.scoring), r.test is not None))
    ordered = [winner] + sorted((r for r in runs if r is not winner), key=lambda r: r.run_id)
    # test accuracies of the winner's configuration over seeds
    accs = [r.test.acc for r in finished
            if r.configuration == winner.configuration and r.test is not None and r.test.acc is not None]
    spread = None
    if len(accs) >= 2:
        spread = SeedSpread(n=len(accs), mean=statistics.fmean(accs), sd=statistics.stdev(accs), min=min(accs),
                            max=max(accs))
    wall = _sum([r.wall_s for r in runs])
    return LeaderboardRow(
        task=winner.task, searcher=winner.searcher, target=winner.target, status=winner.status,
        incomplete=[r.run_id for r in ordered if r.status != "complete"], best=winner,
        seeds=sorted({r.seed for r in runs}), run_ids=[r.run_id for r in ordered], seed_spread=spread,
        calls=_sum([r.calls for r in runs]), tokens=_sum([r.tokens for r in runs]),
        cost_usd=_sum([r.cost_usd for r in runs]), wall_s=None if wall is None else round(wall, 2),
        lineage=lineage(winner.candidates, winner.best_candidate), runs=ordered,
    )


def _sort_key(row: LeaderboardRow):
    acc = row.best.test.acc if row.best.test and row.best.test.acc is not None else None
    limit = row.best.train_limit
    return (row.task, acc is None, -(acc or 0.0), row.searcher, row.target, limit is None, limit or 0)


def _split(values: Sequence[str] | str | None) -> list[str]:
    if values is None:
        return []
    items = [values] if isinstance(values, str) else list(values)
    return [v.strip() for item in items for v in item.split(",") if v.strip()]


def build_leaderboard(
    paths: Sequence[str | Path] | str | Path | None = None,
    *,
    task: Sequence[str] | str | None = None,
    searcher: Sequence[str] | str | None = None,
    model: Sequence[str] | str | None = None,
) -> Leaderboard:
    """The best prompt per (task, searcher, target model) over the runs under ``paths``.

    Args:
        paths: runs folders or run folders (default: ``$APO_RUNS_DIR`` or ``./runs``).
        task: keep only these tasks (names; a comma-separated string works too).
        searcher: keep only these searchers (``ape``, ``autoprompt`` …).
        model: keep only these target models (``embedded``, ``openai:gpt-4o-mini`` …).

    Returns:
        The leaderboard, rows in :data:`SORT_ORDER`.

    Raises:
        UsageError: when a folder is missing or empty, or no run matches the filters.
    """
    if paths is None or isinstance(paths, (str, Path)):
        paths = [runs_dir(paths)]
    filters = {"task": _split(task), "searcher": _split(searcher), "model": _split(model)}
    summaries: list[RunSummary] = []
    skipped: list[SkippedRun] = []
    for path in find_runs(paths):
        try:
            summaries.append(summarize_run(path))
        except (ApoError, ValueError, KeyError, TypeError, OSError) as exc:  # json and pydantic errors are ValueErrors
            skipped.append(SkippedRun(path=str(path), reason=f"{type(exc).__name__}: {str(exc).splitlines()[0]}"))
    kept = [s for s in summaries
            if (not filters["task"] or s.task in filters["task"])
            and (not filters["searcher"] or s.searcher in filters["searcher"])
            and (not filters["model"] or s.target in filters["model"])]
    if not kept:
        seen = {k: sorted({getattr(s, a) for s in summaries}) for k, a in
                (("task", "task"), ("searcher", "searcher"), ("model", "target"))}
        wanted = ", ".join(f"--{k} {','.join(v)}" for k, v in filters.items() if v)
        where = ", ".join(map(str, paths))
        damaged = "".join(f"\n  skipped {s.path}: {s.reason}" for s in skipped)
        if not summaries:
            raise UsageError(f"no finished run to report in {where}" + (f"; {len(skipped)} run(s) could not be read:"
                             f"{damaged}" if skipped else "; run `apo optimize TASK` first"))
        raise UsageError(f"no runs match {wanted} among {len(summaries)} runs in {where}; "
                         + "; ".join(f"{k}s there: {', '.join(v) or '-'}" for k, v in seen.items()) + damaged)
    groups: dict[tuple[str, str, str, int | None], list[RunSummary]] = {}
    for s in kept:
        groups.setdefault((s.task, s.searcher, s.target, s.train_limit), []).append(s)
    rows = sorted((_row(g) for g in groups.values()), key=_sort_key)
    return Leaderboard(sources=[str(p) for p in paths], filters={k: v for k, v in filters.items() if v}, rows=rows,
                       skipped=skipped)


# -- a run's failures ------------------------------------------------------------------------

def wrong_test_examples(path: str | Path) -> WrongExamples | None:
    """The test examples the run's best prompt gets wrong, read from its score events.

    Inputs and gold outputs come from loading the run's task again (the events hold example
    ids and outputs only); when the task cannot be loaded, ``note`` says why.

    Args:
        path: the run folder.

    Returns:
        The wrong examples, or None when the run has no best prompt scored on test.
    """
    from optimizer.run.scoring import Journal, prompt_hash

    store = RunStore(Path(path))
    data = store.read_result()
    if not data or not data.get("best") or not data["best"].get("test"):
        return None
    text = data["best"]["text"]
    ih = prompt_hash(prompt_key(text, data["best"].get("demos")))  # a prompt with its own demonstrations
    journal = Journal()
    journal.replay(store.log.replay())
    records = {ex: rec for (split, h, ex), rec in journal.scores.items() if split == "test" and h == ih}
    config = store.read_config().get("config", {})
    examples, note = {}, None
    try:
        from optimizer.tasks.task import load_task

        task = load_task(config["task"], data_dir=config.get("data_dir"), seed=int(config.get("seed", 0)))
        examples = {ex.id: ex for ex in task.test}
    except (ApoError, OSError, KeyError, ValueError) as exc:
        note = (f"inputs and gold outputs not shown: task {config.get('task')!r} could not be loaded "
                f"({str(exc).splitlines()[0] if str(exc) else type(exc).__name__}); run from the folder the job "
                "ran in, or pass the same --data-dir")
    wrong = []
    for ex_id, rec in records.items():
        if rec.acc is None or rec.acc >= 1:
            continue
        ex = examples.get(ex_id)
        wrong.append(WrongExample(id=ex_id, input=ex.input if ex else None, gold=ex.output if ex else None,
                                  output=rec.output, score=rec.acc, error=rec.error))
    return WrongExamples(prompt=text, n_test=sum(1 for r in records.values() if r.acc is not None),
                         wrong=wrong, note=note)
