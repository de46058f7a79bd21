"""``apo sweep SWEEP.yaml``: tasks x targets x searchers x seeds x settings, expanded into jobs and run by an
executor (a local process pool, or Ray), ending with a leaderboard report of the sweep's runs.

A sweep file::

    tasks: [capitalize_words, sum]          # bundled names, task folders, or names under --data-dir
    targets: [embedded]                     # default: embedded
    searchers: [ape, demos]                 # default: the default searcher
    seeds: [0, 1, 2]                        # default: [0]
    settings:                               # options of every job (the names of a job file / apo optimize)
      rounds: 1
      max_calls: 400
    grid:                                   # optional: more axes, an option and its values
      shots: [3, 5]

Every job is checked before any starts. The sweep's id comes from its name (default: the file's stem) and
its expanded jobs, so running the same file again continues it: finished runs are kept, the others resume
from their journals (``--new`` starts a fresh sweep instead). Each job's run id is fixed up front
(``<sweep id>-<NNN>-<task>``), which is what lets a retried job (its worker killed) resume rather than start
over. Everything lives under ``<runs dir>/sweeps/<sweep id>/``: ``sweep.json`` (the jobs), ``jobs/NNN.json``
(each job's outcome), ``logs/NNN.log`` (local workers' output), ``leaderboard.md`` and ``leaderboard.html``.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from optimizer.errors import UsageError
from optimizer.report.models import Leaderboard
from optimizer.run.store import write_json_atomic
from optimizer.service.sweep_jobs import SweepJob, SweepOutcome, read_outcome
from optimizer.yaml_files import load_yaml

__all__ = ["SweepJob", "SweepOutcome", "SweepResult", "SweepSpec", "load_sweep", "plan_sweep", "sweep"]

SWEEPS = "sweeps"
"""The folder of the runs folder holding each sweep's manifest, job outcomes, logs and report."""

_AXES = {"task": "tasks", "tasks": "tasks", "target": "targets", "targets": "targets", "searcher": "searchers",
         "searchers": "searchers", "seed": "seeds", "seeds": "seeds"}


class SweepSpec(BaseModel):
    """A sweep file's contents."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    name: str | None = Field(default=None, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,60}$")
    """The sweep's name (default: the file's name without its extension); part of the sweep id."""
    tasks: list[str] = Field(min_length=1)
    """The tasks: bundled names, task folders or files, or names under the data folder."""
    targets: list[str] = Field(default=["embedded"], min_length=1)
    """The target models (``embedded``, ``hf:PATH``, ``openai:MODEL`` …)."""
    searchers: list[str] | None = Field(default=None, min_length=1)
    """The searchers (default: the default searcher)."""
    seeds: list[int] = Field(default=[0], min_length=1)
    """The seeds."""
    settings: dict[str, Any] = {}
    """Options of every job, by the names of a job file or ``apo optimize`` (``rounds``, ``max_calls`` …)."""
    grid: dict[str, list[Any]] = {}
    """More axes: an option and the values to sweep it over (``shots: [3, 5]``)."""

    @field_validator("tasks", "targets", "searchers", "seeds", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, (str, int)) else value


class SweepResult(BaseModel):
    """What :func:`sweep` returns."""

    sweep_id: str
    folder: str
    """``<runs dir>/sweeps/<sweep id>``."""
    jobs: list[SweepJob]
    outcomes: list[SweepOutcome]
    report: str | None = None
    """The leaderboard report (HTML) of the sweep's runs, when any finished."""
    leaderboard: Leaderboard | None = Field(default=None, exclude=True)
    """That leaderboard (not in the JSON form: the report has it)."""
    seconds: float = 0.0


def load_sweep(path: str | Path) -> SweepSpec:
    """Read and check a sweep file (YAML, or JSON for ``.json``).

    Raises:
        UsageError: a missing or unreadable file, or a field that is wrong (which, and how to fix it).
    """
    p = Path(path)
    if not p.is_file():
        raise UsageError(f"sweep file {p} not found" + (" (it is a folder)" if p.is_dir() else ""))
    try:
        text = p.read_text(encoding="utf-8")
        data = json.loads(text) if p.suffix.lower() == ".json" else load_yaml(text)
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise UsageError(f"{p}: cannot be read as a sweep file: {str(exc).splitlines()[0]}") from None
    except Exception as exc:  # yaml.YAMLError
        mark = getattr(exc, "problem_mark", None)
        where = f"{p}:{mark.line + 1}:{mark.column + 1}" if mark else str(p)
        raise UsageError(f"{where}: not valid YAML: {getattr(exc, 'problem', None) or exc}") from None
    if not isinstance(data, dict):
        raise UsageError(f"{p}: a sweep file holds one mapping (tasks:, targets:, searchers:, seeds:, settings:, "
                         f"grid:), not a {type(data).__name__}")
    try:
        spec = SweepSpec.model_validate({str(k).replace("-", "_"): v for k, v in data.items()})
    except ValidationError as exc:
        lines = [f"{'.'.join(map(str, e['loc'])) or 'file'}: "
                 + ("unknown field; a sweep file has name, tasks, targets, searchers, seeds, settings and grid"
                    if e["type"] == "extra_forbidden" else f"{e['msg'][0].lower()}{e['msg'][1:]}")
                 for e in exc.errors(include_url=False)]
        raise UsageError(f"{p}: " + "; ".join(lines)) from None
    for where, names in (("settings", spec.settings), ("grid", spec.grid)):
        for name in names:
            if name.replace("-", "_") in _AXES:
                raise UsageError(f"{p}: {where}.{name}: give {_AXES[name.replace('-', '_')]} as the sweep's own "
                                 f"list ({_AXES[name.replace('-', '_')]}: [...]), not in {where}")
        if where == "grid":
            empty = [k for k, v in spec.grid.items() if not v]
            if empty:
                raise UsageError(f"{p}: grid.{empty[0]}: give at least one value")
    return spec


def _safe(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "-" for c in Path(text).name or text)[:40]


def plan_sweep(path: str | Path, *, data_dir: str | Path | None = None, new: bool = False,
               ) -> tuple[str, list[SweepJob]]:
    """Expand a sweep file into checked jobs, without running anything.

    Args:
        path: the sweep file.
        data_dir: the folder of data-dir tasks (else ``settings.data_dir`` or ``$APO_DATA_DIR``).
        new: a fresh sweep id (with the time) instead of the one that continues an earlier run of this file.

    Returns:
        The sweep id and its jobs.

    Raises:
        UsageError: the file, or any job's options (naming the job), is wrong.
    """
    from optimizer.config import RunConfig
    from optimizer.run.engine import make_searcher
    from optimizer.run.preflight import check_job, check_whitebox
    from optimizer.service.submit import check_models
    from optimizer.tasks.task import load_task

    spec = load_sweep(path)
    settings = {k.replace("-", "_"): v for k, v in spec.settings.items()}
    if data_dir is not None:
        settings["data_dir"] = str(Path(data_dir).resolve())
    grid_keys = [k.replace("-", "_") for k in spec.grid]
    searchers: list[str | None] = list(spec.searchers) if spec.searchers else [None]
    combos = list(itertools.product(spec.tasks, spec.targets, searchers, *spec.grid.values(), spec.seeds))
    if len(combos) > 10_000:
        raise UsageError(f"{path}: {len(combos)} jobs; a sweep holds at most 10,000 (split it into several files)")
    configs: list[tuple[dict[str, Any], RunConfig]] = []
    tasks: dict[tuple[str, str | None, int], Any] = {}
    for i, (task, target, searcher, *rest) in enumerate(combos):
        values, seed = dict(zip(grid_keys, rest[:-1])), rest[-1]
        labels = {"task": task, "target": target, "searcher": searcher, "seed": seed, **values}
        options = {**settings, **values, "target": target, "seed": seed}
        if Path(task).exists():  # a task folder or file: the same for workers started elsewhere (Ray)
            task = str(Path(task).resolve())
        if searcher is not None:
            options["searcher"] = searcher
        try:
            config = RunConfig.from_options(task, **options)
            if check_models(config) and config.budget.max_calls is None and config.budget.max_cost is None:
                raise UsageError("a job with an API model needs a budget: give max_calls (or max_cost) in settings")
            key = (config.task, config.data_dir, config.seed)
            if key not in tasks:
                tasks[key] = load_task(config.task, data_dir=config.data_dir, seed=config.seed)
            check_job(config, tasks[key].with_train_limit(config.train_limit, config.seed))
            check_whitebox(config, make_searcher(config))  # a gradient searcher on an API model
        except UsageError as exc:
            shown = {k: v for k, v in labels.items() if v is not None}
            raise UsageError(f"{path}: job {i} ({', '.join(f'{k} {v}' for k, v in shown.items())}): {exc}") from None
        labels["searcher"] = config.searcher
        configs.append((labels, config))
    canonical = json.dumps([c.model_dump(mode="json") for _, c in configs], sort_keys=True)
    name = spec.name or _safe(Path(path).stem)
    sweep_id = f"{name}-{hashlib.sha256(canonical.encode()).hexdigest()[:8]}"
    if new:
        sweep_id = f"{name}-{time.strftime('%Y%m%d-%H%M%S')}"
    jobs = [SweepJob(index=i, run_id=f"{sweep_id}-{i:03d}-{_safe(labels['task'])}", labels=labels,
                     config=config.model_dump(mode="json", exclude_unset=True))
            for i, (labels, config) in enumerate(configs)]
    return sweep_id, jobs


def sweep(path: str | Path, *, executor: Literal["local", "ray"] = "local", workers: int = 2,
          ray_address: str | None = None, retries: int = 2, runs_dir: str | Path | None = None,
          data_dir: str | Path | None = None, new: bool = False,
          on_event: Callable[[str, SweepJob, SweepOutcome | None], None] | None = None,
          on_plan: Callable[[str, list[SweepJob]], None] | None = None) -> SweepResult:
    """Run a sweep file's jobs and write the leaderboard report of its runs.

    Example::

        from optimizer import sweep
        result = sweep("nightly.yaml", workers=2)
        print([o.state for o in result.outcomes], result.report)

    Args:
        path: the sweep file.
        executor: ``local`` (a pool of ``workers`` processes on this machine) or ``ray`` (each job a Ray task).
        workers: jobs at once (local), or CPUs of the local Ray instance started when ``ray_address`` is None.
        ray_address: a Ray cluster to join (``auto``, ``ray://HOST:PORT``); None starts a local instance on
            127.0.0.1. The runs folder must be on storage every node sees.
        retries: how many times a job whose worker died (killed, out of memory) is started again; it resumes
            from its journal.
        runs_dir: the runs folder (default ``$APO_RUNS_DIR`` or ``./runs``).
        data_dir: the folder of data-dir tasks.
        new: start a fresh sweep rather than continue an earlier run of the same file.
        on_event: called with ``("start", job, None)`` and ``("done", job, outcome)`` (progress display).
        on_plan: called with the sweep id and its jobs once they are checked, before any starts.

    Returns:
        The jobs, their outcomes, and where the report is.
    """
    from optimizer.run.preflight import check_runs_folder
    from optimizer.run.store import runs_dir as resolve_runs_dir
    from optimizer.service.executors import LocalExecutor, RayExecutor

    started = time.monotonic()
    root = resolve_runs_dir(runs_dir).resolve()
    sweep_id, jobs = plan_sweep(path, data_dir=data_dir, new=new)
    if retries < 0:
        raise UsageError(f"--retries: give 0 or more, got {retries}")
    check_runs_folder(root)
    if on_plan is not None:
        on_plan(sweep_id, jobs)
    folder = root / SWEEPS / sweep_id
    (folder / "jobs").mkdir(parents=True, exist_ok=True)
    manifest = folder / "sweep.json"
    write_json_atomic(manifest, {"sweep_id": sweep_id, "source": str(Path(path).resolve()),
                                 "jobs": [j.model_dump(mode="json") for j in jobs]})
    notify = on_event or (lambda *_: None)
    outcomes: dict[int, SweepOutcome] = {}
    todo = []
    for job in jobs:
        done = read_outcome(job, root)
        if done is not None:
            outcomes[job.index] = done
            notify("done", job, done)
        else:
            todo.append(job)
    if todo:
        runner = (RayExecutor(workers, ray_address, retries) if executor == "ray"
                  else LocalExecutor(workers, retries))
        for outcome in runner.run(todo, manifest, root, notify):
            outcomes[outcome.index] = outcome
    ordered = [outcomes[j.index] for j in jobs if j.index in outcomes]
    board = write_report(folder, [root / j.run_id for j in jobs])
    return SweepResult(sweep_id=sweep_id, folder=str(folder), jobs=jobs, outcomes=ordered,
                       report=str(folder / "leaderboard.html") if board else None, leaderboard=board,
                       seconds=round(time.monotonic() - started, 1))


def write_report(folder: Path, runs: list[Path]) -> Leaderboard | None:
    """The leaderboard of the sweep's finished runs, written as ``leaderboard.md`` and ``leaderboard.html``;
    None when no run finished."""
    from optimizer.report.build import build_leaderboard
    from optimizer.report.html import render_html
    from optimizer.report.text import render_markdown

    finished = [r for r in runs if (r / "result.json").exists()]
    if not finished:
        return None
    board = build_leaderboard(finished)
    (folder / "leaderboard.md").write_text(render_markdown(board), encoding="utf-8")
    (folder / "leaderboard.html").write_text(render_html(board), encoding="utf-8")
    return board
