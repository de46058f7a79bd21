"""Tasks from :func:`datasets.load_dataset`: ``hf:<name>`` (a Hub dataset, needs network) or
``datasets:<builder>`` (any builder, e.g. ``datasets:csv`` with ``data_files=``).

Every malformed input raises :class:`~optimizer.errors.TaskError` naming the dataset, the split
or column, and the fix.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from optimizer.errors import TaskError, UsageError
from optimizer.tasks.files import SPLITS, fill_splits
from optimizer.tasks.rows import row_example
from optimizer.types import Example

__all__ = ["DATASET_PREFIXES", "dataset_fields", "is_dataset_spec"]

DATASET_PREFIXES = ("hf", "datasets")
"""The prefixes of task names read with :func:`datasets.load_dataset`."""


def is_dataset_spec(spec: str) -> bool:
    """Whether a task name is ``hf:<name>`` or ``datasets:<builder>``.

    Args:
        spec: A task name.

    Returns:
        True when it starts with one of :data:`DATASET_PREFIXES` and a colon.
    """
    return ":" in spec and spec.split(":", 1)[0] in DATASET_PREFIXES


FILE_BUILDERS = frozenset({"csv", "json", "text", "parquet", "arrow", "pandas", "xml", "webdataset", "sql"})
"""``datasets`` builders that read local files, so need ``data_files=`` (or ``data_dir=``)."""


def _first_file(files: Any) -> str | None:
    while isinstance(files, (list, tuple, Mapping)) and files:
        files = next(iter(files.values())) if isinstance(files, Mapping) else files[0]
    return str(files) if isinstance(files, (str, os.PathLike)) else None


def _split_mapping(spec: str, loaded: Mapping[str, Any], mapping: Mapping[str, str] | None) -> dict[str, str]:
    """Our split name -> the dataset's: the ``splits`` option, checked, or train/validation/test."""
    if mapping is None:
        dev_name = next((s for s in ("validation", "dev", "valid") if s in loaded), "validation")
        default = {"train": "train", "dev": dev_name, "test": "test"}
        mapping = {k: v for k, v in default.items() if v in loaded}
        mapping = mapping or {"train": next(iter(loaded))}
    for ours, theirs in mapping.items():
        if ours not in SPLITS or theirs not in loaded:
            raise TaskError(
                f"{spec}: option `splits`: bad entry {ours!r}: {theirs!r}; fix: keys are train/dev/test, "
                f"values are among the dataset's splits: {', '.join(loaded)}"
            )
    return dict(mapping)


def _split_examples(ds: Any, where: str, cols: tuple[str, str, str]) -> tuple[list[Example], list[str] | None]:
    """The examples of one dataset split, and its label names when the output is a ClassLabel."""
    import datasets

    inp, out, _ = cols
    for col in (inp, out):
        if col not in ds.column_names:
            raise TaskError(
                f"{where}: no column {col!r} (columns: {', '.join(ds.column_names)}); "
                f"fix: pass input_field=/output_field="
            )
    feature = ds.features.get(out)
    names = list(feature.names) if isinstance(feature, datasets.ClassLabel) else None
    rows = []
    for i, row in enumerate(ds):
        if names is not None:
            if row[out] is None or row[out] < 0:  # unlabeled rows, e.g. a GLUE test split
                continue
            row = {**row, out: names[row[out]]}
        rows.append(row_example(row, f"{where} row {i}", cols, str(i)))
    return rows, names


def dataset_fields(spec: str, options: dict[str, Any], dev_from_train: int, seed: int) -> dict[str, Any]:
    """A task from :func:`datasets.load_dataset` (Hub names need network; local builders do not).

    Args:
        spec: ``hf:<name>`` or ``datasets:<builder>``.
        options: The dataset options of :func:`~optimizer.tasks.task.load_task` (``input_field``,
            ``output_field``, ``alternatives_field``, ``splits``, ``config`` and keywords of
            :func:`datasets.load_dataset`); consumed.
        dev_from_train: Dev examples to take from train when there is no dev split.
        seed: Seed of every shuffle.

    Returns:
        Keyword arguments of :class:`~optimizer.tasks.task.Task`.
    """
    builder = spec.split(":", 1)[1].strip()
    if not builder:
        raise UsageError(
            f"{spec!r}: name a dataset after the prefix, e.g. hf:imdb, or datasets:csv with data_files=..."
        )
    if builder in FILE_BUILDERS and not options.get("data_files") and not options.get("data_dir"):
        raise TaskError(
            f"{spec}: the {builder!r} builder reads files and none were named (without data_files= it would read "
            f"every {builder} file under the current folder); fix: in Python, load_task({spec!r}, "
            f"data_files={{'train': 'train.{builder}', 'test': 'test.{builder}'}}); on the command line, make a "
            "task folder whose task.yaml names the files (data: {train: train.csv, dev: dev.csv, test: test.csv})"
        )
    inp, out = options.pop("input_field", "input"), options.pop("output_field", "output")
    alt = options.pop("alternatives_field", None) or "alternatives"
    mapping, config = options.pop("splits", None), options.pop("config", None)
    try:
        import datasets
    except ImportError as exc:
        raise UsageError("hf:/datasets: tasks need the `datasets` package: pip install datasets") from exc
    try:
        loaded = datasets.load_dataset(builder, config, **options)
    except Exception as exc:  # datasets raises many types: missing files, unknown names, no network
        raise TaskError(
            f"{spec}: datasets.load_dataset({builder!r}) failed: {type(exc).__name__}: {exc}; fix: check "
            f"the name, config= and data_files= (Hub datasets need network access)"
        ) from exc
    if isinstance(loaded, datasets.Dataset):
        loaded = {"train": loaded}
    found: dict[str, list[Example]] = {}
    labels: list[str] | None = None
    for ours, theirs in _split_mapping(spec, loaded, mapping).items():
        found[ours], names = _split_examples(loaded[theirs], f"{spec} split {theirs!r}", (inp, out, alt))
        labels = labels or names
    train, dev, test = fill_splits(found, dev_from_train, seed, spec)
    first = _first_file(options.get("data_files"))
    fields: dict[str, Any] = dict(
        name=Path(first).stem if first else builder.replace("/", "_"),
        train=train, dev=dev, test=test, labels=labels, metric="label" if labels else "exact_match",
        source=spec + (f" data_files={options['data_files']}" if first else ""),
    )
    return fields
