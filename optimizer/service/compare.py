"""``apo compare TASK``: prompt or tune? Every method on one task and one model, at several training sizes, within
one budget, ending with the learning curves of the leaderboard.

The methods: ``baseline`` (k-shot prompting with the incumbent, no search), the default instruction searcher,
AutoPrompt where the task is a classification (cloze) task, and the trained searchers (prompt tuning, prefix
tuning, P-tuning, LoRA) on a local model. On a masked LM the instruction searchers, which need generation, are
left out. Each (method, training size, seed) is one run with ``--train-limit`` (a larger size keeps every example
of a smaller one); the budget given is split evenly over the runs. The comparison is a sweep: its file is written
to ``<runs dir>/compare/NAME.json`` and run by :func:`optimizer.service.sweep.sweep`, so running the same
comparison again continues it (finished runs are kept, killed ones resume), and ``apo sweep`` of that file does
the same.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

from optimizer.errors import UsageError
from optimizer.service.sweep import SweepJob, SweepOutcome, SweepResult, _safe, sweep

__all__ = ["TRAINED_SEARCHERS", "compare", "compare_methods", "compare_spec", "is_masked_target"]

TRAINED_SEARCHERS = ("prompt-tuning", "prefix-tuning", "p-tuning", "lora")
DEFAULT_SIZES: tuple[int | None, ...] = (8, 32, 128, None)
"""Training sizes of a comparison (None: the whole train split)."""


def is_masked_target(target: str) -> bool:
    """Whether ``target`` names a masked LM (``embedded:splade-tiny``, an ``hf:`` BERT folder); nothing is loaded."""
    from optimizer.models.embedded import DEFAULT_EMBEDDED, EMBEDDED
    from optimizer.models.providers.mlm import is_masked_lm
    from optimizer.models.registry import parse_model

    provider, rest = parse_model(target)
    if provider == "embedded":
        model = EMBEDDED.get(rest or DEFAULT_EMBEDDED)
        return model is not None and model.kind == "masked"
    return provider == "hf" and is_masked_lm(rest)


def compare_methods(target: str, labels: Sequence[str] | None) -> list[str]:
    """The default methods for a target and a task (its label set, None for a generation task): gradient searchers
    only on a local model."""
    from optimizer.config import RunConfig
    from optimizer.models.registry import API_PROVIDERS, parse_model

    default = str(RunConfig.model_fields["searcher"].default)
    if parse_model(target)[0] in {*API_PROVIDERS, "fake"}:
        return ["baseline", default]
    if is_masked_target(target):
        return ["baseline", "autoprompt", *TRAINED_SEARCHERS]
    return ["baseline", default, *(["autoprompt"] if labels else []), *TRAINED_SEARCHERS]


def _scoped(settings: dict[str, Any], methods: Sequence[str]) -> dict[str, Any]:
    """Flat options with searcher sections nested under them (``steps=60`` → ``soft: {steps: 60}``), so that each
    run takes the options of its own searcher and ignores the others'. A whole section (``soft: {...}``) stays as it
    is; a mapping-valued option (``label_words``) is an option like any other."""
    from optimizer.config import searcher_section

    out: dict[str, Any] = {}
    for name, value in settings.items():
        sections = {searcher_section(name, m) for m in methods}
        if sections == {name} and isinstance(value, dict):  # a whole section, merged with its flat options
            out.setdefault(name, {}).update(value)
            continue
        if sections == {None}:
            out[name] = value
        for section in sorted(s for s in sections if s is not None):
            out.setdefault(section, {})[name] = value
    return out


def compare_spec(task: str, *, target: str = "embedded", methods: Sequence[str] | None = None,
                 sizes: Sequence[int | None] = DEFAULT_SIZES, seeds: Sequence[int] = (0,),
                 max_calls: int | None = None, max_seconds: float | None = None,
                 settings: dict[str, Any] | None = None, data_dir: str | Path | None = None) -> dict[str, Any]:
    """The sweep file of a comparison (as data), its sizes checked against the task.

    Raises:
        UsageError: an unknown task or method, a size below 1, or a budget too small to share.
    """
    from optimizer.search import BUILTIN_SEARCHERS
    from optimizer.tasks.task import load_task

    loaded = load_task(task, data_dir=data_dir)
    chosen = list(methods) if methods else compare_methods(target, loaded.labels)
    unknown = [m for m in chosen if m not in BUILTIN_SEARCHERS]
    if unknown:
        raise UsageError(f"--methods: unknown searcher {unknown[0]!r}; choose from {', '.join(BUILTIN_SEARCHERS)}")
    bad = [n for n in sizes if n is not None and n < 1]
    if bad or not sizes:
        raise UsageError(f"--sizes: give training sizes of 1 or more, or 'all' (got {bad[0] if bad else 'none'})")
    n_train = len(loaded.train)
    limits = sorted({None if n is None or n >= n_train else n for n in sizes}, key=lambda n: n or n_train + 1)
    jobs = len(chosen) * len(limits) * len(seeds)
    per_job: dict[str, Any] = {}
    if max_calls is not None:
        if max_calls < jobs:
            raise UsageError(f"--max-calls {max_calls}: the comparison has {jobs} runs, each needs calls; give at "
                             f"least {jobs}")
        per_job["max_calls"] = max_calls // jobs
    if max_seconds is not None:
        per_job["max_seconds"] = max_seconds / jobs
    scoped = _scoped(settings or {}, chosen)
    name = f"compare-{_safe(loaded.name)}-{_safe(target)}"
    return {"name": name, "tasks": [str(Path(task).resolve()) if Path(task).exists() else task],
            "targets": [target], "searchers": chosen, "seeds": list(seeds),
            "settings": {**scoped, **per_job, **({"data_dir": str(data_dir)} if data_dir else {})},
            "grid": {"train_limit": limits}}


def compare(task: str, *, target: str = "embedded", methods: Sequence[str] | None = None,
            sizes: Sequence[int | None] = DEFAULT_SIZES, seeds: Sequence[int] = (0,), max_calls: int | None = None,
            max_seconds: float | None = None, settings: dict[str, Any] | None = None,
            executor: Literal["local", "ray"] = "local", workers: int = 1, ray_address: str | None = None,
            runs_dir: str | Path | None = None, data_dir: str | Path | None = None, new: bool = False,
            on_event: Callable[[str, SweepJob, SweepOutcome | None], None] | None = None,
            on_plan: Callable[[str, list[SweepJob]], None] | None = None) -> SweepResult:
    """Compare prompting, prompt search and training on one task and model at several training sizes.

    Example::

        from optimizer import compare
        from optimizer.report.curves import learning_curves
        result = compare("sst2", target="embedded:splade-tiny", sizes=[8, 32, None], max_calls=20_000,
                         data_dir="../shared/data")
        for curve in learning_curves(result.leaderboard):
            print(curve.sizes, {m: [p.acc for p in pts] for m, pts in curve.lines.items()})

    Args:
        task: the task (bundled name, folder or file, or a name under ``data_dir``).
        target: the model every method runs on.
        methods: searchers (default: :func:`compare_methods`).
        sizes: training sizes (None: all the train split; sizes above it count as all).
        seeds: seeds, at every size.
        max_calls: model calls of the whole comparison, split evenly over its runs.
        max_seconds: seconds of the whole comparison, split evenly over its runs.
        settings: options of every run (``steps``, ``test_limit``, ``label_words`` …, as in a job file).
        executor: ``local`` (``workers`` processes) or ``ray``.
        workers: runs at once.
        ray_address: a Ray cluster to join (``executor="ray"``).
        runs_dir: the runs folder.
        data_dir: the folder of data-dir tasks.
        new: start afresh instead of continuing an earlier run of the same comparison.
        on_event: as in :func:`~optimizer.service.sweep.sweep`.
        on_plan: as in :func:`~optimizer.service.sweep.sweep`.

    Returns:
        The sweep's result; ``result.leaderboard`` has a row per (method, size), and its learning curves are in
        the report (``leaderboard.html``, ``leaderboard.md``).
    """
    from optimizer.run.store import runs_dir as resolve_runs_dir

    spec = compare_spec(task, target=target, methods=methods, sizes=sizes, seeds=seeds, max_calls=max_calls,
                        max_seconds=max_seconds, settings=settings, data_dir=data_dir)
    folder = resolve_runs_dir(runs_dir) / "compare"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{spec['name']}.json"
    path.write_text(json.dumps(spec, indent=2) + "\n", encoding="utf-8")
    return sweep(path, executor=executor, workers=workers, ray_address=ray_address, runs_dir=runs_dir,
                 data_dir=data_dir, new=new, on_event=on_event, on_plan=on_plan)
