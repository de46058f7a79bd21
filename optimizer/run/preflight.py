"""Checks of a job before anything is written: a refused job leaves no run folder and no cache file.

The engine calls :func:`check_runs_folder` before loading models and :func:`check_job` once the task
is loaded; sizes the user asked for that the task cannot give are refused (a default that the task
is too small for is capped, and said once on stderr).
"""

from __future__ import annotations

import math
import os
import sys
from pathlib import Path
from typing import Any

from optimizer.config import RunConfig
from optimizer.errors import UsageError
from optimizer.models.registry import API_PROVIDERS, parse_model
from optimizer.tasks.metrics import resolve_metric
from optimizer.tasks.task import Task, longest_answer_words

__all__ = ["check_job", "check_runs_folder", "check_whitebox", "note"]


def note(message: str) -> None:
    """Say something once on stderr (a cap applied, an override taken)."""
    print(f"note: {message}", file=sys.stderr, flush=True)


def check_runs_folder(root: Path) -> None:
    """Refuse a runs folder apo cannot create or write in, before anything is loaded or written.

    Args:
        root: the runs folder (it may not exist yet).

    Raises:
        UsageError: the path is a file, or neither it nor its nearest existing parent is writable.
    """
    where = "the runs folder (--runs-dir / APO_RUNS_DIR)"
    if root.exists() and not root.is_dir():
        raise UsageError(f"{where} {str(root)!r} is a file, not a folder; fix: point --runs-dir or APO_RUNS_DIR at "
                         "a folder (it is created if missing)")
    existing = root
    while not existing.exists():
        if existing.parent == existing:
            break
        existing = existing.parent
    if not existing.is_dir():
        raise UsageError(f"{where} {str(root)!r} cannot be created: {str(existing)!r} is a file; fix: choose "
                         "another --runs-dir")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UsageError(f"{where} {str(root)!r} is not writable by this user ({str(existing)!r}); fix: choose "
                         "another --runs-dir or APO_RUNS_DIR, or change the folder's permissions")


def check_job(config: RunConfig, task: Task) -> None:
    """Refuse an unknown ``--metric`` and sizes the task cannot give: ``--dev-size``, ``--test-size`` and
    ``--shots`` larger than the split.

    Only values the user set are refused; a default larger than the task is capped (with one note), which is
    what every small task needs.

    Args:
        config: the job as given (``model_fields_set`` tells what the user set).
        task: the loaded task.

    Raises:
        UsageError: naming the option, the size the task has and the fix.
    """
    if config.metric is not None:
        try:
            resolve_metric(config.metric, task.labels)
        except (UsageError, ValueError) as exc:
            raise UsageError(f"--metric {config.metric}: {exc}") from None
    if config.racing.rule != "halving" and config.scoring != "accuracy":
        raise UsageError(f"race_rule {config.racing.rule} (racing.rule): its paired tests compare accuracies, and "
                         f"--scoring is {config.scoring}; fix: give --scoring accuracy, or race_rule halving")
    given = config.model_fields_set
    n_confirm = min(config.selection.confirm_limit, len(task.dev) // 2)
    raced = len(task.dev) - n_confirm
    if config.dev_limit is not None and config.dev_limit > raced:
        if "dev_limit" in given:
            aside = f" after {n_confirm} set aside to confirm the finalists" if n_confirm else ""
            raise UsageError(f"--dev-size {config.dev_limit}: the task {task.name!r} has {raced} dev examples to race "
                             f"on{aside}; fix: give --dev-size {raced} or less, or leave it out")
        if raced < config.dev_limit and raced < 10:
            note(f"the task {task.name!r} has only {raced} dev examples to race on; scores will be coarse")
    if n_confirm and config.scoring == "accuracy":
        _note_power(config, task.name, n_confirm)
    elif not n_confirm and config.selection.confirm_limit:
        note(f"the task {task.name!r} has {len(task.dev)} dev example(s), too few to set any aside to confirm the "
             "finalists (half are, at least 2 needed): the best candidate on dev will ship untested (verdict 'not "
             "tested'); give the task more dev examples")
    words = longest_answer_words(task.train, task.dev, task.test)
    if 2 * words > task.max_output_tokens and task.metric not in ("label", "contains"):  # surely cut, at 2 a word
        note(f"the task {task.name!r} has gold outputs of up to {words} words, and answers are cut at "
             f"{task.max_output_tokens} tokens (max_output_tokens), so the longest cannot be matched; fix: set "
             f"max_output_tokens: {3 * words + 4} in the task's task.yaml")
    if config.test_limit is not None and config.test_limit > len(task.test) and "test_limit" in given:
        raise UsageError(f"--test-size {config.test_limit}: the task {task.name!r} has {len(task.test)} test "
                         f"examples; fix: give --test-size {len(task.test)} or less, or leave it out")
    if config.shots is not None and config.train_limit is not None and config.shots > len(task.train):
        raise UsageError(f"--shots {config.shots} with --train-limit {config.train_limit}: the demonstrations are "
                         f"drawn from the {len(task.train)} training examples the limit keeps; fix: give --shots "
                         f"{len(task.train)} or less, or a larger --train-limit")
    if config.shots is not None and config.shots > len(task.train):
        raise UsageError(f"--shots {config.shots}: the task {task.name!r} has {len(task.train)} training examples to "
                         f"draw demonstrations from; fix: give --shots {len(task.train)} or less")


def _note_power(config: RunConfig, name: str, n_confirm: int) -> None:
    """Say up front when the confirmation examples are too few for any but a large gain to be called better.

    With every pair that differs in the finalist's favour, the sign-flip test's p-value is 2**-d for d such pairs.
    The max-T correction leaves it so when the finalists answer alike (d = log2(1 / alpha) suffices) and, when they
    differ everywhere, costs at most what Bonferroni does (d = log2(finalists / alpha)).
    """
    sel = config.selection
    least = math.ceil(math.log2(1 / sel.alpha) - 1e-9)
    most = math.ceil(math.log2(sel.finalists / sel.alpha) - 1e-9)
    test = f"the paired test (alpha {sel.alpha:g}, max-T over {sel.finalists} finalists)"
    span = f"{least}" if least == most else f"{least} (finalists that answer alike) to {most}"
    if least > n_confirm:
        note(f"the task {name!r} sets only {n_confirm} dev examples aside to confirm the finalists against the "
             f"incumbent: {test} needs a finalist to get at least {least} more of them right than the incumbent, so "
             f"this run will ship the incumbent with 'no significant improvement' whatever it finds; give the task at "
             f"least {2 * most} dev examples (half are set aside to confirm)")
    elif most / n_confirm > 0.1:
        note(f"the task {name!r} sets {n_confirm} dev examples aside to confirm the finalists against the incumbent: "
             f"{test} can call a finalist better only if it gets {span} more of them right "
             f"(up to {most / n_confirm:+.2f} accuracy), so a smaller gain ships as 'no significant improvement'; a "
             "task with more dev examples gives the test more power")


def check_whitebox(config: RunConfig, searcher: Any) -> None:
    """Refuse, before loading anything, a model that cannot give a white-box searcher gradients."""
    if "whitebox" not in searcher.requires:
        return
    provider = parse_model(config.target)[0]
    if provider in API_PROVIDERS or provider == "fake":
        what = "an API model" if provider in API_PROVIDERS else "the fake model"
        use = "a local causal LM such as --model embedded (SmolLM2) or hf:/path/to/model"
        if searcher.name == "autoprompt":
            use = "a masked LM such as --model embedded:splade-tiny or hf:/path/to/bert, or " + use
        raise UsageError(f"--searcher {searcher.name} needs gradients through a local model, and {config.target!r} is "
                         f"{what}; use {use}")
