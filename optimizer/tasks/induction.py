"""Instruction-induction tasks (Honovich et al. 2022), the task set APE reports on.

A task ``<name>`` lives in a folder holding ``induce/<name>.json`` (demonstrations),
``execute/<name>.json`` (held-out test examples) and optionally ``annotations/<name>.json``
(human-written instructions); that folder is ``data_dir`` or ``data_dir/instruction_induction``.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

from optimizer.errors import TaskError
from optimizer.tasks.rows import read_examples

__all__ = ["INDUCTION_METRICS", "induction_fields", "induction_roots"]

# Metrics of the instruction-induction tasks, as APE scores them: TASK_TO_METRIC in
# keirp/automatic_prompt_engineer, experiments/evaluation/instruction_induction/utility.py
# (taken from the Instruction Induction paper, arXiv 2205.10782). Its default 'em' compares
# lowercased text without punctuation (its normalization also cuts at the first '.' and
# drops ' and ', and keeps articles): normalized_match here. 'es' (exact set of words) is
# exact_set. Every score is the best over all accepted answers; as in APE's loader, the
# accepted answers of translation tasks are `possible_translations` (also `other_rhymes`
# for rhymes and `all_common_concepts` for common_concept).
INDUCTION_METRICS: dict[str, str] = {
    "common_concept": "f1",
    "informal_to_formal": "f1",
    "orthography_starts_with": "exact_set",
    "taxonomy_animal": "exact_set",
    "synonyms": "contains",
}
"""Per-task metric of the instruction-induction tasks; others use ``normalized_match``."""


def induction_roots(data_dir: Path | None) -> list[Path]:
    """The folders under ``data_dir`` that hold instruction-induction tasks.

    Args:
        data_dir: The data folder, or None.

    Returns:
        ``data_dir`` and ``data_dir/instruction_induction``, those that have an ``induce/`` folder.
    """
    if data_dir is None:
        return []
    return [d for d in (data_dir, data_dir / "instruction_induction") if (d / "induce").is_dir()]


def induction_fields(name: str, root: Path, dev_from_train: int, seed: int) -> dict[str, Any]:
    """The fields of an instruction-induction task: dev and train sampled from induce/, test = execute/.

    Args:
        name: The task name: ``induce/<name>.json`` and ``execute/<name>.json`` under ``root``.
        root: The folder holding ``induce/``, ``execute/`` and optionally ``annotations/``.
        dev_from_train: Dev examples to sample from induce/ (at most half of it).
        seed: Seed of every shuffle.

    Returns:
        Keyword arguments of :class:`~optimizer.tasks.task.Task`.
    """
    cols = ("input", "output", "alternatives")
    execute = root / "execute" / f"{name}.json"
    if not execute.is_file():
        raise TaskError(
            f"{execute}: file not found; an instruction-induction task needs both "
            f"induce/{name}.json and execute/{name}.json"
        )
    induce = read_examples(root / "induce" / f"{name}.json", cols, seed)
    test = read_examples(execute, cols, seed)
    order = list(induce)
    random.Random(seed).shuffle(order)
    n_dev = min(dev_from_train, len(order) // 2)
    instructions: list[str] = []
    notes = root / "annotations" / f"{name}.json"
    if notes.is_file():
        try:
            instructions = json.loads(notes.read_text(encoding="utf-8"))["annotations"]
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise TaskError(f'{notes}: expected {{"annotations": ["an instruction", ...]}} ({exc})') from exc
        if not isinstance(instructions, list) or not all(isinstance(i, str) for i in instructions):
            raise TaskError(f"{notes}: field `annotations` must be a list of strings")
    return dict(
        name=name,
        description=f"Instruction-induction task {name} (Honovich et al. 2022).",
        train=order[n_dev : n_dev + 1000],
        dev=order[:n_dev],
        test=test,
        metric=INDUCTION_METRICS.get(name, "normalized_match"),
        shots=3,
        instructions=instructions,
        source=f"instruction induction (Honovich et al. 2022): {root}",
    )
