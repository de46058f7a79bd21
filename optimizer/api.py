"""The Python API: the same engine as the CLI, for use inside pipelines."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from optimizer.config import APEConfig, Budget, RunConfig
from optimizer.errors import UsageError
from optimizer.tasks.task import Task, load_task

__all__ = ["EvalResult", "evaluate", "optimize"]


class EvalResult(BaseModel):
    """One instruction scored on one split."""

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


def optimize(
    task: str | Path | Task,
    *,
    target: str = "embedded",
    proposer: str | None = None,
    metric: str | Callable[[str, Sequence[str]], float] | None = None,
    budget: Budget | dict | None = None,
    runs_dir: str | Path | None = None,
    data_dir: str | Path | None = None,
    progress: bool = False,
    **options: Any,
):
    """Search for the best instruction for a task; the job is written to ``runs/<id>/``.

    Args:
        task: a bundled task name, a task folder or file, or a :class:`Task` built in memory.
        target: model that executes prompts (``embedded``, ``hf:PATH``, ``fake:NAME``).
        proposer: model that writes instructions (defaults to ``target``).
        metric: a metric name or a Python callable ``(prediction, answers) -> float``.
        budget: limits on calls, tokens and seconds.
        runs_dir: where to write the run (default ``./runs``).
        data_dir: folder of external task data (instruction-induction layout).
        progress: show a rich progress display on stderr.
        **options: any other RunConfig field (``seed``, ``shots``, ``scoring``, ``dev_size`` …) or
            APE parameter (``rounds``, ``candidates``, ``top_k`` …). With ``searcher="autoprompt"``,
            AutoPrompt parameters instead (``template``, ``trigger_tokens``, ``label_words``,
            ``candidates``, ``iterations`` …, see :class:`~optimizer.config.AutoPromptConfig`), or
            ``autoprompt=AutoPromptConfig(...)``.

    Returns:
        The RunResult (best instruction, dev and test scores, baselines, usage).
    """
    from optimizer.run.engine import run
    from optimizer.run.progress import Reporter, RichReporter

    seed = int(options.get("seed", 0))
    loaded = _task(task, data_dir, seed)
    if options.get("searcher") == "autoprompt":  # AutoPrompt parameters (candidates, template…) go to it
        from optimizer.config import AutoPromptConfig

        from optimizer.config import migrate_config as _migrate

        given = options.pop("autoprompt", None)
        fields = dict(given.model_dump() if isinstance(given, AutoPromptConfig) else given or {})
        flat = _migrate({"autoprompt": {k: options.pop(k) for k in list(options)
                                        if k in AutoPromptConfig.model_fields or k in ("template", "candidates", "batch_size")}})
        fields.update(flat["autoprompt"])
        options["autoprompt"] = AutoPromptConfig(**fields)
    from optimizer.config import RacingConfig, migrate_config

    racing = {k.removeprefix("race_"): options.pop(k) for k in ("race_min_examples", "race_eta") if k in options}
    if racing:
        options["racing"] = RacingConfig(**racing)
    options = migrate_config(options)
    ape = {k: options.pop(k) for k in list(options) if k in APEConfig.model_fields}
    unknown = set(options) - set(RunConfig.model_fields)
    if unknown:
        raise UsageError(f"optimize() got unknown options {sorted(unknown)}; see RunConfig and APEConfig fields")
    user_metric = metric if callable(metric) else None
    config = RunConfig(
        task=str(task) if not isinstance(task, Task) else task.name,
        data_dir=str(data_dir) if data_dir else None,
        target=target, proposer=proposer, metric=None if user_metric else metric,
        budget=Budget.model_validate(budget or {}), ape=APEConfig(**ape), **options,
    )
    return run(config, runs_dir=runs_dir, task=loaded, metric=user_metric,
               reporter=RichReporter() if progress else Reporter())


def evaluate(
    task: str | Path | Task,
    prompt: str,
    model: str = "embedded",
    *,
    split: str = "test",
    shots: int | None = None,
    metric: str | None = None,
    template: str = "completion",
    data_dir: str | Path | None = None,
    seed: int = 0,
    limit: int | None = None,
    base_url: str | None = None,
    request_timeout: float = 120.0,
    concurrency: int = 4,
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

    Returns:
        The mean scores and every example's prediction.
    """
    from optimizer.run.engine import evaluate_prompt
    from optimizer.run.scoring import summarize

    if split not in ("train", "dev", "test"):
        raise UsageError(f"split must be train, dev or test, not {split!r}")
    if limit is not None and limit < 1:
        raise UsageError(f"limit must be at least 1, got {limit}")
    config = RunConfig(task=task.name if isinstance(task, Task) else str(task), target=model, shots=shots,
                       metric=metric, execution_style=template, data_dir=str(data_dir) if data_dir else None,
                       seed=seed, base_url=base_url, request_timeout=request_timeout, concurrency=concurrency)
    loaded, examples, raw = evaluate_prompt(config, prompt, split=split, limit=limit, task=_task(task, data_dir, seed))
    s = summarize(raw)
    rows = [{"input": ex.input, "gold": ex.output, "prediction": raw[ex.id].output, "acc": raw[ex.id].acc,
             "lp": raw[ex.id].lp} for ex in examples]
    return EvalResult(task=loaded.name, split=split, prompt=prompt, model=model, acc=s.acc, lp=s.lp, n=s.n,
                      per_example=rows)
