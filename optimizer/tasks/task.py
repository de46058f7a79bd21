"""Tasks: examples split into train/dev/test plus how to score them, and their loaders.

:func:`load_task` accepts ``hf:<name>`` or ``datasets:<builder>`` (anything
:func:`datasets.load_dataset` reads) and otherwise, in this order of resolution:

1. a path: a folder holding ``task.yaml``, a ``.yaml``/``.yml`` file, or one data file
   (``.jsonl``, ``.json``, ``.csv``, ``.tsv``) that is split 60/20/20 with a seeded shuffle;
2. a task name: ``<root>/<name>/task.yaml`` under the task roots (:func:`task_roots`),
   then under ``data_dir``;
3. an instruction-induction task ``<name>`` (Honovich et al. 2022) under ``data_dir`` or
   ``data_dir/instruction_induction``: ``induce/<name>.json``, ``execute/<name>.json`` and
   optionally ``annotations/<name>.json``;
4. ``sst2`` or ``lama:P<id>`` (AutoPrompt's cloze benchmarks) under ``data_dir``
   (see :mod:`optimizer.tasks.cloze_data`).

A ``task.yaml`` (data paths are relative to it)::

    name: past_tense
    description: Put a verb in the past tense.
    metric: exact_match          # a name from optimizer.tasks.metrics.METRICS
    shots: 3
    max_output_tokens: 8          # default: from the longest gold output
    instructions: [Write the past tense of the verb.]
    data: {train: train.jsonl, dev: dev.jsonl, test: test.jsonl}
    source: written for this project

Data rows have ``input`` and ``output`` and may have ``alternatives`` (a list, or in CSV/TSV
a ``|``-separated cell) and ``id``; ``input_column``/``output_column``/``alternatives_column``
in the YAML rename them. Every malformed input raises :class:`~optimizer.errors.TaskError`
naming the file, the line or field, and the fix.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from optimizer.tasks.cloze_data import cloze_task_fields, is_cloze_task
from optimizer.errors import TaskError, UsageError
from optimizer.tasks.metrics import METRICS, Metric, resolve_metric
from optimizer.tasks.files import (
    DATA_SUFFIXES, SPLITS, SplitName, dataset_fields, file_fields, induction_fields, read_split_files, read_task_yaml,
)
from optimizer.types import Example

__all__ = ["INDUCTION_METRICS", "Task", "TaskInfo", "TaskSpec", "list_tasks", "load_task", "task_roots"]

_YAML_SUFFIXES = (".yaml", ".yml")

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


def _check_metric(value: str) -> str:
    name = value.strip().lower().replace("-", "_")
    if name not in METRICS:
        raise ValueError(f"unknown metric {value!r}; fix: use one of {', '.join(sorted(METRICS))}")
    return name


class Task(BaseModel):
    """A task: examples in three splits and how a prediction is scored."""

    model_config = ConfigDict(use_attribute_docstrings=True)

    name: str
    """Short identifier, e.g. ``antonyms``."""
    description: str = ""
    """One sentence saying what the task is."""
    train: list[Example]
    """Examples that demonstrations are drawn from (for proposals and few-shot prompts)."""
    dev: list[Example]
    """Examples that candidates are scored on during the search."""
    test: list[Example]
    """Held-out examples for the final report; never seen by the search."""
    metric: str = "exact_match"
    """Name of the metric in :data:`optimizer.tasks.metrics.METRICS`."""
    labels: list[str] | None = None
    """The label set of a classification task (needed by the ``label`` metric)."""
    shots: int = Field(default=0, ge=0)
    """Default number of demonstrations in the execution template."""
    max_output_tokens: int = Field(default=16, ge=1)
    """Token limit of the target model's answer."""
    instructions: list[str] = []
    """Seed or human-written instructions, scored as baselines."""
    source: str = ""
    """Where the data came from (a path, a dataset name, a citation)."""

    @field_validator("metric")
    @classmethod
    def _known_metric(cls, value: str) -> str:
        return _check_metric(value)

    @model_validator(mode="after")
    def _labels_for_label_metric(self) -> Task:
        if self.metric == "label" and not self.labels:
            raise ValueError("field `labels`: metric 'label' needs `labels`; fix: add the label set, e.g. labels: [positive, negative]")
        return self

    def split(self, name: SplitName) -> list[Example]:
        """The examples of one split.

        Args:
            name: ``"train"``, ``"dev"`` or ``"test"``.

        Returns:
            That split's examples.

        Raises:
            UsageError: For any other name.
        """
        if name not in SPLITS:
            raise UsageError(f"unknown split {name!r}; use one of: train, dev, test")
        return getattr(self, name)

    def scorer(self) -> Metric:
        """The task's metric as a function ``(prediction, answers) -> float``.

        Returns:
            The resolved metric, with the label set bound for ``label``.
        """
        return resolve_metric(self.metric, self.labels)


class DataSpec(BaseModel):
    """The ``data`` section of a task.yaml: one file per split, or a single file."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    train: str | None = None
    """Training examples, relative to the task.yaml."""
    dev: str | None = None
    """Dev examples; when absent, ``dev_size`` examples are taken from train."""
    test: str | None = None
    """Test examples."""
    file: str | None = None
    """A single file split 60/20/20 instead (``data: all.jsonl`` is short for this)."""

    @model_validator(mode="after")
    def _complete(self) -> DataSpec:
        missing = [f"`data.{k}`" for k in ("train", "test") if getattr(self, k) is None]
        if self.file is None and missing:
            raise ValueError(
                f"missing {' and '.join(missing)}; fix: give train and test files (dev is optional), "
                f"or one file to split, e.g. data: all.jsonl"
            )
        if self.file is not None and (self.train or self.dev or self.test):
            raise ValueError("give either one file or per-split files; fix: remove one")
        return self


class TaskSpec(BaseModel):
    """The contents of a task.yaml file."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    name: str
    """Task identifier."""
    description: str = ""
    """What the task is."""
    metric: str = "exact_match"
    """Metric name from :data:`optimizer.tasks.metrics.METRICS`."""
    labels: list[str] | None = None
    """Label set, for classification tasks."""
    shots: int = Field(default=0, ge=0)
    """Default number of demonstrations."""
    max_output_tokens: int | None = Field(default=None, ge=1)
    """Answer token limit; default: derived from the longest gold output."""
    instructions: list[str] = []
    """Seed or human-written instructions."""
    data: DataSpec
    """Where the examples are."""
    input_column: str = "input"
    """Name of the input field/column in the data files."""
    output_column: str = "output"
    """Name of the gold output field/column."""
    alternatives_column: str = "alternatives"
    """Name of the optional field/column of accepted alternatives."""
    source: str = ""
    """Where the data came from."""

    @field_validator("metric")
    @classmethod
    def _known_metric(cls, value: str) -> str:
        return _check_metric(value)

    @field_validator("data", mode="before")
    @classmethod
    def _single_file(cls, value: Any) -> Any:
        return {"file": value} if isinstance(value, str) else value

    @model_validator(mode="after")
    def _labels_for_label_metric(self) -> TaskSpec:
        if self.metric == "label" and not self.labels:
            raise ValueError("field `labels`: metric 'label' needs `labels`; fix: add the label set, e.g. labels: [positive, negative]")
        return self


class TaskInfo(BaseModel):
    """One line of :func:`list_tasks`."""

    model_config = ConfigDict(use_attribute_docstrings=True)

    name: str
    """The name that :func:`load_task` accepts."""
    kind: Literal["yaml", "instruction_induction"]
    """The task's format."""
    path: str
    """The task.yaml, or the instruction-induction ``induce`` file."""
    metric: str = ""
    """The task's metric."""
    sizes: dict[str, int] = {}
    """Number of examples per split."""
    error: str = ""
    """Why the task failed to load (then ``sizes`` is empty)."""


# ----------------------------------------------------------------------------- building tasks


def _derived_max_tokens(*splits: list[Example]) -> int:
    """Answer token limit from the longest gold output: 3 per word plus 4, at most 64."""
    words = max((len(ex.output.split()) for split in splits for ex in split), default=4)
    return min(64, words * 3 + 4)


def _make_task(fields: dict[str, Any], overrides: Mapping[str, Any], where: str) -> Task:
    fields.update(overrides)
    if "max_output_tokens" not in fields or fields["max_output_tokens"] is None:
        fields["max_output_tokens"] = _derived_max_tokens(fields["train"], fields["dev"], fields["test"])
    for split in SPLITS:
        if not fields[split]:
            raise TaskError(f"{where}: the {split} split is empty; fix: add examples to it")
    try:
        return Task(**fields)
    except ValidationError as exc:
        raise _spec_error(where, exc) from None


def _spec_error(where: str, exc: ValidationError) -> TaskError:
    """A TaskError naming each invalid field of a ValidationError, what is wrong and the fix."""
    problems = []
    for err in exc.errors():
        loc, kind = ".".join(str(p) for p in err["loc"]), err["type"]
        msg = err["msg"].removeprefix("Value error, ")
        if kind == "value_error":  # our own validators say what to do
            problems.append(f"field `{loc}`: {msg}" if loc else msg)
            continue
        if kind == "missing":
            fix = f"add `{loc}`"
        elif kind == "extra_forbidden":
            model = DataSpec if err["loc"][0] == "data" and len(err["loc"]) > 1 else TaskSpec
            fix = f"remove it or fix its spelling; allowed: {', '.join(model.model_fields)}"
        else:
            fix = f"set `{loc}` to {_EXPECTED.get(kind.split('_')[0], 'a valid value')}"
        got = "" if kind == "missing" else f" (got {err.get('input')!r})"
        problems.append(f"field `{loc}`: {msg}{got}; fix: {fix}")
    if len(problems) == 1:
        return TaskError(f"{where}: {problems[0]}")
    return TaskError(f"{where}: {len(problems)} problems:\n" + "\n".join(f"  - {p}" for p in problems))


_EXPECTED = {
    "int": "a whole number",
    "greater": "a larger number",
    "string": "a text string",
    "list": "a list, e.g. [a, b]",
    "model": "a mapping, e.g. {train: train.jsonl, test: test.jsonl}",
    "dict": "a mapping",
}


# ----------------------------------------------------------------------------- loaders


def _load_yaml(path: Path, dev_size: int, seed: int, overrides: Mapping[str, Any]) -> Task:
    raw = read_task_yaml(path)
    try:
        spec = TaskSpec.model_validate(raw)
    except ValidationError as exc:
        raise _spec_error(str(path), exc) from None
    cols = (spec.input_column, spec.output_column, spec.alternatives_column)
    train, dev, test = read_split_files(path, spec.data.model_dump(), cols, dev_size, seed)
    fields = spec.model_dump(exclude={"data", "input_column", "output_column", "alternatives_column"})
    fields.update(train=train, dev=dev, test=test, source=spec.source or str(path))
    return _make_task(fields, overrides, str(path))


def _load_file(path: Path, seed: int, overrides: Mapping[str, Any]) -> Task:
    return _make_task(file_fields(path, seed, INDUCTION_METRICS), overrides, str(path))


def _load_induction(name: str, root: Path, dev_size: int, seed: int, overrides: Mapping[str, Any]) -> Task:
    """An instruction-induction task: dev and train sampled from induce/, test = execute/."""
    fields = induction_fields(name, root, dev_size, seed, INDUCTION_METRICS)
    return _make_task(fields, overrides, str(root / "induce" / f"{name}.json"))


# ----------------------------------------------------------------------------- resolution

_OVERRIDABLE = frozenset(Task.model_fields) - set(SPLITS)


def task_roots() -> list[Path]:
    """Folders searched for task names, in order, without duplicates.

    Returns:
        Each folder of ``$APO_TASKS_DIR`` (``os.pathsep``-separated, if set), ``./tasks`` and
        the ``tasks/`` folder of this repository; folders that do not exist are included.
    """
    env = [p for p in os.environ.get("APO_TASKS_DIR", "").split(os.pathsep) if p]
    roots: list[Path] = []
    for candidate in (*env, Path.cwd() / "tasks", Path(__file__).resolve().parents[1] / "tasks"):
        path = Path(candidate).expanduser().resolve()
        if path not in roots:
            roots.append(path)
    return roots


def _discover(data_dir: Path | None) -> dict[str, tuple[str, Path, Path]]:
    """Task names -> (kind, file, root), first match winning, in resolution order."""
    found: dict[str, tuple[str, Path, Path]] = {}
    roots = [*task_roots(), *([data_dir] if data_dir else [])]
    for root in roots:
        for file in sorted(root.glob("*/task.yaml")) if root.is_dir() else []:
            found.setdefault(file.parent.name, ("yaml", file, root))
    for root in _induction_roots(data_dir):
        for file in sorted((root / "induce").glob("*.json")):
            found.setdefault(file.stem, ("instruction_induction", file, root))
    return found


def _induction_roots(data_dir: Path | None) -> list[Path]:
    if data_dir is None:
        return []
    return [d for d in (data_dir, data_dir / "instruction_induction") if (d / "induce").is_dir()]


def _resolve_data_dir(data_dir: str | Path | None) -> Path | None:
    data_dir = data_dir or os.environ.get("APO_DATA_DIR")
    return Path(data_dir).expanduser() if data_dir else None


def load_task(
    spec: str | Path,
    *,
    data_dir: str | Path | None = None,
    dev_size: int = 50,
    seed: int = 0,
    **options: Any,
) -> Task:
    """Load a task from a path, a task name or a ``hf:``/``datasets:`` dataset.

    Args:
        spec: A task folder, task.yaml or data file; a task name (searched in
            :func:`task_roots`, then ``data_dir``); or ``hf:<name>`` / ``datasets:<builder>``.
        data_dir: Folder with more tasks: ``<name>/task.yaml`` folders and instruction-
            induction data (``induce/``, ``execute/``, ``annotations/``, also found under
            ``data_dir/instruction_induction``). Default: ``$APO_DATA_DIR``.
        dev_size: Dev examples sampled from the training pool when there is no dev file
            (instruction induction: from induce/, at most half of it).
        seed: Seed of every shuffle and sample, so a task loads identically each time.
        **options: Task fields to override (``metric``, ``shots``, ``labels``,
            ``max_output_tokens``, ``instructions``, ``name``, ``description``, ``source``).
            For ``hf:``/``datasets:`` also ``input_field``, ``output_field``,
            ``alternatives_field``, ``splits`` (``{"dev": "validation", ...}``), ``config``
            (the dataset's configuration name) and any :func:`datasets.load_dataset` keyword
            such as ``data_files``.

    Returns:
        The task with non-empty train, dev and test splits.

    Raises:
        TaskError: When the task is malformed or not found; the message says where and why.
        UsageError: For an unknown option or a dev_size below 1.
    """
    if dev_size < 1:
        raise UsageError(f"dev_size must be at least 1, got {dev_size}")
    text = str(spec)
    if isinstance(spec, str) and text.split(":", 1)[0] in ("hf", "datasets") and ":" in text:
        fields, overrides = dataset_fields(text, dict(options), dev_size, seed, _OVERRIDABLE)
        return _make_task(fields, overrides, text)
    unknown = sorted(set(options) - _OVERRIDABLE)
    if unknown:
        raise UsageError(
            f"unknown task option(s) {', '.join(unknown)}; allowed: {', '.join(sorted(_OVERRIDABLE))}"
        )
    path = Path(text).expanduser()
    if path.is_dir():
        yaml_file = next((path / n for n in ("task.yaml", "task.yml") if (path / n).is_file()), None)
        if yaml_file is None:
            raise TaskError(
                f"{path}: folder has no task.yaml; fix: add one, or pass a data file "
                f"({', '.join(DATA_SUFFIXES)})"
            )
        return _load_yaml(yaml_file, dev_size, seed, options)
    if path.is_file():
        if path.suffix.lower() in _YAML_SUFFIXES:
            return _load_yaml(path, dev_size, seed, options)
        return _load_file(path, seed, options)
    looks_like_path = "/" in text or "\\" in text or path.suffix.lower() in (*DATA_SUFFIXES, *_YAML_SUFFIXES)
    if isinstance(spec, Path) or looks_like_path:
        raise TaskError(f"{text}: no such file or folder")
    root_dir = _resolve_data_dir(data_dir)
    known = _discover(root_dir)
    if text in known:
        kind, file, root = known[text]
        if kind == "yaml":
            return _load_yaml(file, dev_size, seed, options)
        return _load_induction(text, root, dev_size, seed, options)
    if is_cloze_task(text):  # sst2, lama:P17 (AutoPrompt's benchmarks)
        return _make_task(cloze_task_fields(text, root_dir, seed), options, text)
    looked = [f"{r}/{text}/task.yaml" for r in [*task_roots(), *([root_dir] if root_dir else [])]]
    looked += [f"{r}/induce/{text}.json" for r in _induction_roots(root_dir)]
    hint = "" if root_dir else " No data_dir was given (pass data_dir= / --data-dir, or set APO_DATA_DIR)."
    raise TaskError(
        f"no task named {text!r}. Looked for a file or folder {text!r}, then: {'; '.join(looked)}.{hint} "
        f"Available: {', '.join(known) or 'none'}. Fix: pass one of these names or a path to a task."
    )


def list_tasks(data_dir: str | Path | None = None) -> list[TaskInfo]:
    """Every task that :func:`load_task` finds by name, loaded to report its sizes.

    Args:
        data_dir: Folder with more tasks, as in :func:`load_task`; default ``$APO_DATA_DIR``.

    Returns:
        One entry per task name in resolution order; a task that fails to load is listed
        with its error instead of sizes.
    """
    infos = []
    for name, (kind, file, root) in _discover(_resolve_data_dir(data_dir)).items():
        info = TaskInfo(name=name, kind=kind, path=str(file))  # type: ignore[arg-type]
        try:
            task = _load_yaml(file, 50, 0, {}) if kind == "yaml" else _load_induction(name, root, 50, 0, {})
        except TaskError as exc:
            info.error = str(exc)
        else:
            info.metric = task.metric
            info.sizes = {s: len(task.split(s)) for s in SPLITS}
        infos.append(info)
    return infos
