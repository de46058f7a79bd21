"""Reading task data: data files (JSONL, JSON, CSV, TSV), task.yaml files, instruction-induction
folders and :mod:`datasets` datasets, into examples and train/dev/test splits.

The public functions return keyword arguments of :class:`~optimizer.tasks.task.Task` (the row
format is described in :mod:`optimizer.tasks.task`). Every malformed input raises
:class:`~optimizer.errors.TaskError` naming the file, the line or field, and the fix.
"""

from __future__ import annotations

import csv
import json
import os
import random
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any, Literal

import yaml

from optimizer.errors import TaskError, UsageError
from optimizer.types import Example

__all__ = [
    "DATA_SUFFIXES", "SPLITS", "SplitName", "dataset_fields", "file_fields", "induction_fields",
    "read_split_files", "read_task_yaml",
]

SplitName = Literal["train", "dev", "test"]
SPLITS: tuple[SplitName, ...] = ("train", "dev", "test")
"""The split names, in order."""
DATA_SUFFIXES = (".jsonl", ".json", ".csv", ".tsv")
"""The data file types that can hold examples."""
_ALTERNATIVE_KEYS = ("possible_translations", "other_rhymes", "all_common_concepts")


# ----------------------------------------------------------------------------- reading rows


def _text(value: Any, where: str, key: str) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    raise TaskError(f'{where}: field "{key}" must be a string, got {type(value).__name__}')


def _example(row: Any, where: str, cols: tuple[str, str, str], default_id: str) -> Example:
    """Turn one data row into an Example, or raise a TaskError naming ``where``."""
    inp, out, alt = cols
    if not isinstance(row, Mapping):
        raise TaskError(f'{where}: expected an object with "{inp}" and "{out}", got {type(row).__name__}')
    for key in (inp, out):
        if key not in row or row[key] is None:
            raise TaskError(
                f'{where}: missing "{key}" (found: {", ".join(map(str, row)) or "nothing"}); fix: '
                f'give every example "{inp}" and "{out}", or set input_column/output_column in task.yaml'
            )
    raw = row.get(alt)
    if raw is None or raw == "":
        alternatives: list[str] = []
    elif isinstance(raw, str):
        alternatives = [a.strip() for a in raw.split("|") if a.strip()]
    elif isinstance(raw, list):
        alternatives = [_text(a, where, alt) for a in raw]
    else:
        raise TaskError(f'{where}: "{alt}" must be a list of strings or a "|"-separated string')
    return Example(
        input=_text(row[inp], where, inp),
        output=_text(row[out], where, out),
        alternatives=tuple(alternatives),
        id=str(row.get("id", default_id)),
    )


def _induction_examples(data: Mapping[str, Any], path: Path, seed: int) -> list[Example]:
    """Examples of an instruction-induction file ``{"examples": {"1": {...}, ...}}``.

    Rows without ``input`` are built the way APE's loader builds them (cause_and_effect,
    common_concept); known lists of accepted answers become alternatives.
    """
    examples = data["examples"]
    if not isinstance(examples, Mapping):
        raise TaskError(f'{path}: field "examples" must map ids to {{"input": ..., "output": ...}}')
    rng = random.Random(seed)
    keys = sorted(examples, key=lambda k: (0, int(k)) if str(k).isdigit() else (1, str(k)))
    out = []
    for key in keys:
        row = examples[key]
        where = f"{path}: examples.{key}"
        if isinstance(row, Mapping) and "input" not in row:
            row = dict(row)
            if "cause" in row and "effect" in row:  # APE: the two sentences in random order
                pair = [row["cause"], row["effect"]]
                rng.shuffle(pair)
                row.update(input=f"Sentence 1: {pair[0]} Sentence 2: {pair[1]}", output=row["cause"])
            elif isinstance(row.get("items"), list):
                row.update(input=", ".join(map(str, row["items"])), output=row.get("concept"))
        keys_here = row if isinstance(row, Mapping) else {}
        alt_key = next((k for k in _ALTERNATIVE_KEYS if k in keys_here), "alternatives")
        out.append(_example(row, where, ("input", "output", alt_key), str(key)))
    return out


def _read_examples(path: Path, cols: tuple[str, str, str], seed: int, field: str = "") -> list[Example]:
    """Read a data file (.jsonl, .json, .csv, .tsv) into Examples."""
    suffix = path.suffix.lower()
    label = f" (field `{field}`)" if field else ""
    if suffix not in DATA_SUFFIXES:
        raise TaskError(
            f"{path}{label}: unsupported file type {suffix!r}; use one of {', '.join(DATA_SUFFIXES)}"
        )
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise TaskError(f"{path}{label}: cannot read the file ({exc})") from exc
    if suffix == ".jsonl":
        rows = []
        for lineno, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise TaskError(
                    f"{path}:{lineno}: not valid JSON ({exc.msg}, column {exc.colno}); fix: one "
                    f'object per line, like {{"{cols[0]}": "...", "{cols[1]}": "..."}}'
                ) from exc
            rows.append(_example(row, f"{path}:{lineno}", cols, str(len(rows))))
        return rows
    if suffix == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise TaskError(f"{path}:{exc.lineno}: not valid JSON ({exc.msg}, column {exc.colno})") from exc
        if isinstance(data, Mapping) and "examples" in data:
            return _induction_examples(data, path, seed)
        if not isinstance(data, list):
            raise TaskError(
                f'{path}: expected a list of {{"{cols[0]}": ..., "{cols[1]}": ...}} objects or '
                f'an instruction-induction file {{"examples": {{"1": {{...}}}}}}'
            )
        return [_example(row, f"{path}: item {i}", cols, str(i)) for i, row in enumerate(data)]
    reader = csv.DictReader(text.splitlines(), delimiter="\t" if suffix == ".tsv" else ",")
    header = reader.fieldnames or []
    for col in cols[:2]:
        if col not in header:
            raise TaskError(
                f'{path}:1: no column "{col}" (columns: {", ".join(header) or "none"}); fix: name '
                f"the columns {cols[0]},{cols[1]} or set input_column/output_column in task.yaml"
            )
    return [_example(row, f"{path}:{reader.line_num}", cols, str(i)) for i, row in enumerate(reader)]


# ----------------------------------------------------------------------------- splitting


def _split_622(examples: list[Example], seed: int, where: str) -> tuple[list[Example], ...]:
    """A seeded 60/20/20 train/dev/test split."""
    if len(examples) < 3:
        raise TaskError(
            f"{where}: needs at least 3 examples to split into train/dev/test, found {len(examples)}"
        )
    shuffled = list(examples)
    random.Random(seed).shuffle(shuffled)
    n_eval = max(1, round(len(shuffled) * 0.2))
    return shuffled[2 * n_eval :], shuffled[:n_eval], shuffled[n_eval : 2 * n_eval]


def _fill_splits(
    found: Mapping[str, list[Example]], dev_size: int, seed: int, where: str
) -> tuple[list[Example], ...]:
    """Complete the splits: one split is split 60/20/20; a missing dev or test is taken from train."""
    found = {k: v for k, v in found.items() if v}
    if not found:
        raise TaskError(f"{where}: no examples found")
    if len(found) == 1:
        return _split_622(next(iter(found.values())), seed, where)
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
        n = min(dev_size, len(train) // 2)
        dev, train = train[:n], train[n:]
    if not train or not dev:
        raise TaskError(
            f"{where}: too few training examples ({len(found['train'])}) to also take dev/test from"
        )
    return train, dev, test


# ----------------------------------------------------------------------------- task files


def read_task_yaml(path: Path) -> dict[str, Any]:
    """The mapping in a task.yaml file, not yet validated.

    Args:
        path: The file.

    Returns:
        Its top-level mapping.
    """
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f":{mark.line + 1}" if mark is not None else ""
        raise TaskError(f"{path}{at}: not valid YAML ({getattr(exc, 'problem', None) or exc})") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise TaskError(f"{path}: cannot read the file ({exc})") from exc
    if not isinstance(raw, dict):
        raise TaskError(
            f"{path}: expected a mapping with at least `name` and `data`, got {type(raw).__name__}"
        )
    return raw


def read_split_files(
    path: Path, files: Mapping[str, str | None], cols: tuple[str, str, str], dev_size: int, seed: int
) -> tuple[list[Example], ...]:
    """The splits of a task.yaml's ``data`` section.

    Args:
        path: The task.yaml; file names are relative to its folder.
        files: The file of each of ``file``, ``train``, ``dev`` and ``test`` (or None).
        cols: The names of the input, output and alternatives fields or columns.
        dev_size: Dev examples to take from train when there is no dev file.
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
        examples = _read_examples(file, cols, seed, f"data.{split}")
        if not examples:
            raise TaskError(f"{file} (field `data.{split}`): no examples; fix: add at least one")
        found["train" if split == "file" else split] = examples
    return _fill_splits(found, dev_size, seed, str(path))


def _is_induction_file(path: Path) -> bool:
    if path.suffix.lower() != ".json":
        return False
    data = json.loads(path.read_text(encoding="utf-8-sig"))
    return isinstance(data, Mapping) and "examples" in data


def file_fields(path: Path, seed: int, induction_metrics: Mapping[str, str]) -> dict[str, Any]:
    """The fields of a task made of one data file, split 60/20/20 with a seeded shuffle.

    Args:
        path: The data file (.jsonl, .json, .csv, .tsv or an instruction-induction file).
        seed: Seed of every shuffle.
        induction_metrics: Metric by task name of instruction-induction files (by default
            ``normalized_match``).

    Returns:
        Keyword arguments of :class:`~optimizer.tasks.task.Task`.
    """
    examples = _read_examples(path, ("input", "output", "alternatives"), seed)
    train, dev, test = _split_622(examples, seed, str(path))
    fields: dict[str, Any] = dict(name=path.stem, train=train, dev=dev, test=test, source=str(path))
    if _is_induction_file(path):
        fields.update(metric=induction_metrics.get(path.stem, "normalized_match"), shots=3)
    return fields


def induction_fields(
    name: str, root: Path, dev_size: int, seed: int, induction_metrics: Mapping[str, str]
) -> dict[str, Any]:
    """The fields of an instruction-induction task: dev and train sampled from induce/, test = execute/.

    Args:
        name: The task name: ``induce/<name>.json`` and ``execute/<name>.json`` under ``root``.
        root: The folder holding ``induce/``, ``execute/`` and optionally ``annotations/``.
        dev_size: Dev examples to sample from induce/ (at most half of it).
        seed: Seed of every shuffle.
        induction_metrics: Metric by task name (by default ``normalized_match``).

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
    induce = _read_examples(root / "induce" / f"{name}.json", cols, seed)
    test = _read_examples(execute, cols, seed)
    order = list(induce)
    random.Random(seed).shuffle(order)
    n_dev = min(dev_size, len(order) // 2)
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
        metric=induction_metrics.get(name, "normalized_match"),
        shots=3,
        instructions=instructions,
        source=f"instruction induction (Honovich et al. 2022): {root}",
    )


def _first_file(files: Any) -> str | None:
    while isinstance(files, (list, tuple, Mapping)) and files:
        files = next(iter(files.values())) if isinstance(files, Mapping) else files[0]
    return str(files) if isinstance(files, (str, os.PathLike)) else None


def dataset_fields(
    spec: str, options: dict[str, Any], dev_size: int, seed: int, overridable: Collection[str]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """A task from :func:`datasets.load_dataset` (Hub names need network; local builders do not).

    Args:
        spec: ``hf:<name>`` or ``datasets:<builder>``.
        options: The options of :func:`~optimizer.tasks.task.load_task`; consumed.
        dev_size: Dev examples to take from train when there is no dev split.
        seed: Seed of every shuffle.
        overridable: The names of the task fields that options may set.

    Returns:
        Keyword arguments of :class:`~optimizer.tasks.task.Task`, and the options that override them.
    """
    builder = spec.split(":", 1)[1].strip()
    if not builder:
        raise UsageError(
            f"{spec!r}: name a dataset after the prefix, e.g. hf:imdb, or datasets:csv with data_files=..."
        )
    overrides = {k: options.pop(k) for k in list(options) if k in overridable}
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
    found: dict[str, list[Example]] = {}
    labels: list[str] | None = None
    for ours, theirs in mapping.items():
        ds, where = loaded[theirs], f"{spec} split {theirs!r}"
        for col in (inp, out):
            if col not in ds.column_names:
                raise TaskError(
                    f"{where}: no column {col!r} (columns: {', '.join(ds.column_names)}); "
                    f"fix: pass input_field=/output_field="
                )
        feature = ds.features.get(out)
        names = list(feature.names) if isinstance(feature, datasets.ClassLabel) else None
        labels = labels or names
        rows = []
        for i, row in enumerate(ds):
            if names is not None:
                if row[out] is None or row[out] < 0:  # unlabeled rows, e.g. a GLUE test split
                    continue
                row = {**row, out: names[row[out]]}
            rows.append(_example(row, f"{where} row {i}", (inp, out, alt), str(i)))
        found[ours] = rows
    train, dev, test = _fill_splits(found, dev_size, seed, spec)
    first = _first_file(options.get("data_files"))
    fields: dict[str, Any] = dict(
        name=Path(first).stem if first else builder.replace("/", "_"),
        train=train, dev=dev, test=test, labels=labels, metric="label" if labels else "exact_match",
        source=spec + (f" data_files={options['data_files']}" if first else ""),
    )
    return fields, overrides
