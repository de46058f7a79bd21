"""Task data files into train/dev/test splits: the ``data`` section of a task.yaml, or one data
file split 60/20/20 with a seeded shuffle.

The public functions return examples or keyword arguments of :class:`~optimizer.tasks.task.Task`.
Every malformed input raises :class:`~optimizer.errors.TaskError` naming the file, the line or
field, and the fix.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from optimizer.errors import TaskError
from optimizer.tasks.induction import INDUCTION_METRICS
from optimizer.tasks.rows import is_induction_file, read_examples
from optimizer.types import Example

__all__ = ["SPLITS", "SplitName", "file_fields", "fill_splits", "read_split_files", "split_60_20_20"]

SplitName = Literal["train", "dev", "test"]
SPLITS: tuple[SplitName, ...] = ("train", "dev", "test")
"""The split names, in order."""


def split_60_20_20(examples: list[Example], seed: int, where: str) -> tuple[list[Example], ...]:
    """A seeded 60/20/20 train/dev/test split.

    Args:
        examples: All the examples.
        seed: Seed of the shuffle.
        where: The file or dataset, named in error messages.

    Returns:
        The train, dev and test examples.
    """
    if len(examples) < 3:
        raise TaskError(
            f"{where}: needs at least 3 examples to split into train/dev/test, found {len(examples)}"
        )
    shuffled = list(examples)
    random.Random(seed).shuffle(shuffled)
    n_eval = max(1, round(len(shuffled) * 0.2))
    return shuffled[2 * n_eval :], shuffled[:n_eval], shuffled[n_eval : 2 * n_eval]


def fill_splits(
    found: Mapping[str, list[Example]], dev_from_train: int, seed: int, where: str
) -> tuple[list[Example], ...]:
    """Complete the splits: one split is split 60/20/20; a missing dev or test is taken from train.

    Args:
        found: The examples of each split that has any (``train``, ``dev``, ``test``).
        dev_from_train: Dev examples taken from train when there is no dev split (at most
            half of what is left of train).
        seed: Seed of the shuffle of train before anything is taken from it.
        where: The file or dataset, named in error messages.

    Returns:
        The train, dev and test examples.
    """
    found = {k: v for k, v in found.items() if v}
    if not found:
        raise TaskError(f"{where}: no examples found")
    if len(found) == 1:
        return split_60_20_20(next(iter(found.values())), seed, where)
    if "train" not in found:
        raise TaskError(
            f"{where}: found splits {sorted(found)} but no train split; "
            f"fix: map one with splits={{'train': ...}}"
        )
    train = list(found["train"])
    if "test" not in found or "dev" not in found:
        random.Random(seed).shuffle(train)
    test = found.get("test")
    if test is None:
        n = max(1, len(train) // 5)
        test, train = train[:n], train[n:]
    dev = found.get("dev")
    if dev is None:
        n = min(dev_from_train, len(train) // 2)
        dev, train = train[:n], train[n:]
    if not train or not dev:
        raise TaskError(
            f"{where}: too few training examples ({len(found['train'])}) to also take dev/test from"
        )
    return train, dev, test


def read_split_files(
    path: Path, files: Mapping[str, str | None], cols: tuple[str, str, str], dev_from_train: int, seed: int
) -> tuple[list[Example], ...]:
    """The splits of a task.yaml's ``data`` section.

    Args:
        path: The task.yaml; file names are relative to its folder.
        files: The file of each of ``file``, ``train``, ``dev`` and ``test`` (or None).
        cols: The names of the input, output and alternatives fields or columns.
        dev_from_train: Dev examples to take from train when there is no dev file.
        seed: Seed of every shuffle.

    Returns:
        The train, dev and test examples.
    """
    found: dict[str, list[Example]] = {}
    for split in ("file", *SPLITS):
        rel = files.get(split)
        if rel is None:
            continue
        file = path.parent / rel
        if not file.is_file():
            raise TaskError(
                f"{path}: field `data.{split}`: file not found: {file}; fix: correct the path "
                f"(relative to the task.yaml)"
            )
        examples = read_examples(file, cols, seed, f"data.{split}")
        if not examples:
            raise TaskError(f"{file} (field `data.{split}`): no examples; fix: add at least one")
        found["train" if split == "file" else split] = examples
    return fill_splits(found, dev_from_train, seed, str(path))


def file_fields(path: Path, seed: int) -> dict[str, Any]:
    """The fields of a task made of one data file, split 60/20/20 with a seeded shuffle.

    Args:
        path: The data file (.jsonl, .json, .csv, .tsv or an instruction-induction file).
        seed: Seed of every shuffle.

    Returns:
        Keyword arguments of :class:`~optimizer.tasks.task.Task`.
    """
    examples = read_examples(path, ("input", "output", "alternatives"), seed)
    train, dev, test = split_60_20_20(examples, seed, str(path))
    fields: dict[str, Any] = dict(name=path.stem, train=train, dev=dev, test=test, source=str(path))
    if is_induction_file(path):
        fields.update(metric=INDUCTION_METRICS.get(path.stem, "normalized_match"), shots=3)
    return fields
