"""The Python API: the same engine as the CLI, for use inside pipelines.

The ``apo`` command calls only these functions; each is a thin door to the package that does the work
(``optimizer.run`` for jobs and runs, ``optimizer.export`` for a run's shipped prompt, ``optimizer.report`` for
the leaderboard, and through :mod:`optimizer.resources` ``optimizer.models`` for the response cache and the
embedded models).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict

from optimizer.config import Budget, RunConfig
from optimizer.errors import UsageError
from optimizer.export import ExportedPrompt, RunEvalResult, evaluate_run, export_prompt, export_run
from optimizer.report.build import Leaderboard
from optimizer.resources import CacheStats, EmbeddedStatus, cache_stats, clear_cache, list_models, pull_model
from optimizer.run.listing import RunDetails, RunInfo, run_info_of
from optimizer.run.repair import LogRepairReport
from optimizer.service.server import serve
from optimizer.tasks.nearest import nearest_k, nearest_phrase
from optimizer.tasks.task import Task, load_task
from optimizer.types import INCUMBENT_KINDS as INCUMBENT_KINDS  # for the command line's verdict line
from optimizer.types import RunResult

if TYPE_CHECKING:
    from rich.console import Console

    from optimizer.run.context import Searcher
    from optimizer.run.estimate import Estimate

__all__ = ["CacheStats", "EmbeddedStatus", "EvalResult", "ExportedPrompt", "LogRepairReport", "RunDetails",
           "RunEvalResult", "RunInfo", "cache_stats", "clear_cache", "estimate", "evaluate", "evaluate_run",
           "export_prompt", "export_run", "leaderboard_text", "list_models", "list_runs", "nearest_k", "nearest_phrase",
           "optimize", "print_leaderboard", "print_run_details", "pull_model", "repair_run", "resume", "run_info",
           "runs_folder", "serve", "show_run"]

_DOCS = ConfigDict(use_attribute_docstrings=True)


class EvalResult(BaseModel):
    """One instruction scored on one split."""

    model_config = _DOCS

    task: str
    """Task name."""
    split: str
    """Split scored."""
    prompt: str
    """The instruction."""
    model: str
    """Target model id."""
    acc: float | None
    """Mean metric score."""
    lp: float | None
    """Mean gold log-probability (None when the model has no log-probabilities)."""
    n: int
    """Examples scored."""
    per_example: list[dict]
    """Input, gold output, prediction and score of every example."""


def _task(task: str | Path | Task, data_dir: str | Path | None, seed: int) -> Task:
    return task if isinstance(task, Task) else load_task(task, data_dir=data_dir, seed=seed)


def _job(task: str | Path | Task | RunConfig | None, config: RunConfig | str | Path | dict | None,
         options: dict[str, Any]) -> tuple[RunConfig, Task | None]:
    """The configuration for a call of :func:`optimize` or :func:`estimate`, and the in-memory task if one was given."""
    if isinstance(task, RunConfig):
        if config is not None:
            raise UsageError("give the configuration once: as the first argument or as config=, not both")
        task, config = None, task
    loaded = task if isinstance(task, Task) else None
    named = {"task": loaded.name if loaded else str(task)} if task is not None else {}
    options = {k: str(v) if isinstance(v, Path) else v for k, v in {**options, **named}.items()}
    if isinstance(config, (str, Path)):
        return RunConfig.from_file(config, **options), loaded
    base = config.model_dump(exclude_unset=True) if isinstance(config, RunConfig) else dict(config or {})
    return RunConfig.from_options(**{**base, **options}), loaded


def _reporter(progress: bool):
    from optimizer.run.progress import Reporter, RichReporter

    return RichReporter() if progress else Reporter()


def optimize(
    task: str | Path | Task | RunConfig | None = None,
    *,
    config: RunConfig | str | Path | dict | None = None,
    searcher: str | Searcher | None = None,
    target: str | None = None,
    proposer: str | None = None,
    metric: str | Callable[[str, Sequence[str]], float] | None = None,
    budget: Budget | dict | None = None,
    runs_dir: str | Path | None = None,
    data_dir: str | Path | None = None,
    progress: bool = False,
    handle_interrupt: bool = False,
    **options: Any,
) -> RunResult:
    """Search for the best prompt for a task; the job is written to ``runs/<id>/``.

    Args:
        task: a bundled task name, a task folder or file, a :class:`Task` built in memory, or a whole
            :class:`RunConfig`.
        config: a job given whole: a :class:`RunConfig`, a mapping, or a YAML/JSON job file (the same
            names as ``**options``, or the nested shape); every other argument given overrides it.
        searcher: ``ape`` (default), ``autoprompt``, or a searcher object (the ``Searcher`` protocol of
            ``optimizer.run.context``); a run made by an object resumes with ``resume(run_id, searcher=...)``.
        target: model that executes prompts (``embedded``, ``hf:PATH``, ``openai:MODEL``, ``fake:NAME`` …).
        proposer: model that writes instructions (defaults to ``target``).
        metric: a metric name or a Python callable ``(prediction, answers) -> float``.
        budget: limits on calls, tokens, seconds and cost (or give ``max_calls=`` … directly).
        runs_dir: where to write the run (default ``$APO_RUNS_DIR`` or ``./runs``).
        data_dir: folder of external task data (instruction-induction layout, ``sst2/``, ``lama_trex/``).
        progress: show a rich progress display on stderr.
        handle_interrupt: handle Ctrl-C as ``apo optimize`` does (main thread only): the first stops at the next
            model call and returns the result so far with status ``interrupted`` (``resume`` finishes it); a
            second raises :class:`~optimizer.errors.RunAborted`, a ``KeyboardInterrupt`` naming the run.
        **options: any name :meth:`RunConfig.from_options` takes: a RunConfig field (``seed``, ``shots``,
            ``scoring``, ``dev_limit`` …), a budget limit (``max_calls`` …), ``race_min_examples``,
            ``race_eta``, ``race_rule``, ``race_delta``, and the searcher's parameters: APE's (``rounds`` …) or,
            with ``searcher="autoprompt"``, AutoPrompt's (``cloze_template``, ``label_words``,
            ``token_candidates``, ``iterations`` …), or whole sections (``ape=APEConfig(...)``).

    Returns:
        The result: best prompt, dev and test scores, baselines, usage.
    """
    from optimizer.run.engine import run

    custom = None if searcher is None or isinstance(searcher, str) else searcher
    user_metric = metric if callable(metric) else None
    given = {"searcher": custom.name if custom else searcher, "target": target, "proposer": proposer,
             "metric": None if user_metric else metric, "budget": budget, "data_dir": data_dir}
    job, loaded = _job(task, config, {**{k: v for k, v in given.items() if v is not None}, **options})
    return run(job, runs_dir=runs_dir, reporter=_reporter(progress), task=loaded, metric=user_metric, searcher=custom,
               handle_interrupt=handle_interrupt)


def resume(run_id: str, *, runs_dir: str | Path | None = None, progress: bool = False,
           searcher: Searcher | None = None, task: Task | None = None, allow_changed_data: bool = False,
           handle_interrupt: bool = False) -> RunResult:
    """Continue a stopped job without recomputing any recorded score (see ``apo resume``).

    The run must be free (no other process resuming it: :class:`~optimizer.errors.RunLockedError`), its log
    readable and its own, and its task's data unchanged since it began (each refused with a
    :class:`~optimizer.errors.UsageError` saying what to do).

    Args:
        run_id: the run id or folder.
        runs_dir: the runs folder (default ``$APO_RUNS_DIR`` or ``./runs``).
        progress: show a rich progress display on stderr.
        searcher: the searcher object of a run made by one (built-in searchers need none).
        task: the task, when the run was of a :class:`Task` built in memory (others load again by name).
        allow_changed_data: continue although the task's examples changed since the run began (a warning is
            written to stderr; recorded scores are kept by example id).
        handle_interrupt: handle Ctrl-C as :func:`optimize` does.

    Returns:
        The finished result.
    """
    from optimizer.run.engine import resume as _resume

    return _resume(run_id, runs_dir=runs_dir, reporter=_reporter(progress), searcher=searcher, task=task,
                   allow_changed_data=allow_changed_data, handle_interrupt=handle_interrupt)


def estimate(task: str | Path | Task | RunConfig | None = None, *,
             config: RunConfig | str | Path | dict | None = None, **options: Any) -> Estimate:
    """The most model calls, and about how many tokens and dollars, an APE job would spend; nothing runs.

    Args:
        task: as in :func:`optimize` (a task or a whole :class:`RunConfig`).
        config: as in :func:`optimize`.
        **options: as in :func:`optimize`.

    Returns:
        Proposer and target calls (upper bounds), tokens and cost (None without prices), pairs per phase.
    """
    from optimizer.run.estimate import estimate as _estimate
    from optimizer.run.preflight import check_job

    job, loaded = _job(task, config, options)
    if job.searcher not in {"ape", "demos", "joint", "reflect"}:
        raise UsageError(f"estimate covers the ape, demos, joint and reflect searchers, not {job.searcher!r} (an "
                         "AutoPrompt job's dry run counts example passes: apo optimize ... --searcher autoprompt "
                         "--dry-run)")
    the_task = (loaded or load_task(job.task, data_dir=job.data_dir, seed=job.seed)).with_train_limit(
        job.train_limit, job.seed)
    check_job(job, the_task)  # what the run would refuse, the estimate refuses
    return _estimate(job, the_task)


# -- runs ----------------------------------------------------------------------------------------

def runs_folder(runs_dir: str | Path | None = None) -> Path:
    """Where runs are kept.

    Args:
        runs_dir: a folder, or None.

    Returns:
        ``runs_dir``, else ``$APO_RUNS_DIR``, else ``./runs``.
    """
    from optimizer.run.store import runs_dir as _runs_dir

    return _runs_dir(runs_dir)


def repair_run(run_id: str, runs_dir: str | Path | None = None) -> LogRepairReport:
    """Make a run with a damaged ``events.jsonl`` resumable again (``apo runs repair``; see optimizer.run.repair).

    Args:
        run_id: the run id or its folder.
        runs_dir: the runs folder (default ``$APO_RUNS_DIR`` or ``./runs``).

    Returns:
        What was kept and dropped, and where the original log went (``events.jsonl.bak-<time>``).
    """
    from optimizer.run.repair import repair_log
    from optimizer.run.store import RunStore

    return repair_log(RunStore.open(runs_dir, run_id))


def list_runs(runs_dir: str | Path | None = None) -> list[RunInfo]:
    """Every run under the runs folder, by id.

    Args:
        runs_dir: the runs folder (default ``$APO_RUNS_DIR`` or ``./runs``).

    Returns:
        One entry per run folder (one with a ``config.json``), sorted by id (so by start time); a run whose
        files cannot be read is listed with ``error`` set (status ``damaged``) and the others still are.
    """
    from optimizer.run.store import RunStore

    root = runs_folder(runs_dir)
    return [run_info_of(RunStore(p), tolerant=True) for p in sorted(root.glob("*/")) if (p / "config.json").exists()]


def run_info(run_id: str, runs_dir: str | Path | None = None) -> RunInfo:
    """One run's configuration and result.

    Args:
        run_id: the run id or its folder.
        runs_dir: the runs folder (default ``$APO_RUNS_DIR`` or ``./runs``).

    Returns:
        The run; a missing run raises :class:`UsageError`.
    """
    from optimizer.run.store import RunStore

    return run_info_of(RunStore.open(runs_dir, run_id))


def show_run(run_id: str, runs_dir: str | Path | None = None) -> RunDetails:
    """One run with the best prompt's lineage and the test examples it gets wrong.

    Args:
        run_id: the run id or its folder.
        runs_dir: the runs folder (default ``$APO_RUNS_DIR`` or ``./runs``).

    Returns:
        The run's details; a missing run raises :class:`UsageError`.
    """
    from optimizer.report.build import lineage, wrong_test_examples
    from optimizer.run.events import ScoreRecorded
    from optimizer.run.store import RunStore
    from optimizer.types import Candidate

    store = RunStore.open(runs_dir, run_id)
    info = run_info_of(store)
    result = info.result or {}
    steps = lineage([Candidate.model_validate(c) for c in result.get("candidates", [])],
                    (result.get("best") or {}).get("candidate")) if info.result else []
    return RunDetails(**info.model_dump(), scores=len(store.log.of_type(ScoreRecorded)), lineage=steps,
                      wrong=wrong_test_examples(store.path) if info.result else None)


def print_run_details(details: RunDetails, console: Console) -> None:
    """Print a run's lineage and wrong test examples as ``apo runs show`` does.

    Args:
        details: from :func:`show_run`.
        console: a rich console.
    """
    from optimizer.report.text import render_lineage, render_wrong

    render_lineage(details.lineage, console)
    render_wrong(details.wrong, console)


def print_leaderboard(board: Leaderboard, console: Console) -> None:
    """Print the leaderboard as the terminal table of ``apo leaderboard``.

    Args:
        board: from :func:`~optimizer.build_leaderboard`.
        console: a rich console (its width decides the layout).
    """
    from optimizer.report.text import render_table

    render_table(board, console)


def leaderboard_text(board: Leaderboard, format: Literal["md", "json", "html", "curves"]) -> str:
    """The leaderboard as Markdown, JSON (the same data as ``board``), one self-contained HTML page, or only its
    learning curves as Markdown tables (``curves``; empty without rows at two or more training sizes).

    Args:
        board: from :func:`~optimizer.build_leaderboard`.
        format: ``md``, ``json``, ``html`` or ``curves``.

    Returns:
        The text.
    """
    if format == "md":
        from optimizer.report.text import render_markdown

        return render_markdown(board)
    if format == "json":
        return board.model_dump_json(indent=2) + "\n"
    if format == "curves":
        from optimizer.report.curves import learning_curves_markdown

        return "\n".join(learning_curves_markdown(board)).strip()
    from optimizer.report.html import render_html

    return render_html(board)


# -- one prompt ----------------------------------------------------------------------------------

def evaluate(
    task: str | Path | Task,
    prompt: str,
    model: str = "embedded",
    *,
    split: Literal["train", "dev", "test"] = "test",
    shots: int | None = None,
    metric: str | None = None,
    template: Literal["completion", "chat"] = "completion",
    data_dir: str | Path | None = None,
    seed: int = 0,
    limit: int | None = None,
    base_url: str | None = None,
    request_timeout: float = 120.0,
    concurrency: int = 4,
    cache: bool = True,
) -> EvalResult:
    """Score one instruction on a split of a task.

    Args:
        task: the task (name, path, or Task).
        prompt: the instruction ("" for none).
        model: the target model string.
        split: ``train``, ``dev`` or ``test``.
        shots: demonstrations in the template (default: the task's).
        metric: override the task's metric.
        template: ``completion`` or ``chat``.
        data_dir: folder of external task data.
        seed: picks the demonstrations exactly as ``optimize`` does with the same seed.
        limit: score only the first N examples.
        base_url: an OpenAI-compatible server for ``openai:`` models.
        request_timeout: seconds to wait for one API response.
        concurrency: API requests in flight at once.
        cache: read and write answers in the response cache.

    Returns:
        The mean scores and every example's prediction. :func:`evaluate_run` scores a run's shipped prompt
        with the run's own settings instead.
    """
    from optimizer.run.engine import evaluate_prompt
    from optimizer.run.scoring import summarize

    if split not in ("train", "dev", "test"):
        raise UsageError(f"split must be train, dev or test, not {split!r}")
    if limit is not None and limit < 1:
        raise UsageError(f"limit must be at least 1, got {limit}")
    config = RunConfig(task=task.name if isinstance(task, Task) else str(task), target=model, shots=shots,
                       metric=metric, execution_style=template, data_dir=str(data_dir) if data_dir else None,
                       seed=seed, base_url=base_url, request_timeout=request_timeout, concurrency=concurrency,
                       cache=cache)
    loaded, examples, raw = evaluate_prompt(config, prompt, split=split, limit=limit, task=_task(task, data_dir, seed))
    s = summarize(raw)
    rows = [{"input": ex.input, "gold": ex.output, "prediction": raw[ex.id].output, "acc": raw[ex.id].acc,
             "lp": raw[ex.id].lp} for ex in examples]
    return EvalResult(task=loaded.name, split=split, prompt=prompt, model=model, acc=s.acc, lp=s.lp, n=s.n,
                      per_example=rows)
