"""The task.yaml format: its schema (:class:`TaskSpec`), reading it into task fields, and error
messages that name each invalid field and the fix.

A ``task.yaml`` (data paths are relative to it)::

    name: past_tense
    description: Put a verb in the past tense.
    metric: exact_match          # a name from optimizer.tasks.metrics.METRICS
    shots: 3
    max_output_tokens: 8          # default: from the longest gold output (3 a word + 4, at most 256)
    instructions: [Write the past tense of the verb.]
    data: {train: train.jsonl, dev: dev.jsonl, test: test.jsonl}
    source: written for this project

Data rows have ``input`` and ``output`` and may have ``alternatives`` and ``id`` (see
:mod:`optimizer.tasks.rows`); ``input_column``/``output_column``/``alternatives_column`` rename them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from optimizer.errors import TaskError
from optimizer.tasks.files import read_split_files
from optimizer.tasks.metrics import METRICS
from optimizer.yaml_files import load_yaml

__all__ = ["DataSpec", "TaskSpec", "check_metric", "read_task_yaml", "spec_error", "yaml_task_fields"]


def check_metric(value: str) -> str:
    """A metric name in its canonical form.

    Args:
        value: A metric name, in any case, with ``-`` or ``_``.

    Returns:
        The name as in :data:`optimizer.tasks.metrics.METRICS`.

    Raises:
        ValueError: For an unknown name (pydantic validators turn it into a field error).
    """
    name = value.strip().lower().replace("-", "_")
    if name not in METRICS:
        raise ValueError(f"unknown metric {value!r}; fix: use one of {', '.join(sorted(METRICS))}")
    return name


class DataSpec(BaseModel):
    """The ``data`` section of a task.yaml: one file per split, or a single file."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    train: str | None = None
    """Training examples, relative to the task.yaml."""
    dev: str | None = None
    """Dev examples; when absent, ``dev_from_train`` examples are taken from train."""
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
        return check_metric(value)

    @field_validator("data", mode="before")
    @classmethod
    def _single_file(cls, value: Any) -> Any:
        return {"file": value} if isinstance(value, str) else value

    @model_validator(mode="after")
    def _labels_for_label_metric(self) -> TaskSpec:
        if self.metric == "label" and not self.labels:
            raise ValueError("field `labels`: metric 'label' needs `labels`; "
                             "fix: add the label set, e.g. labels: [positive, negative]")
        return self


def spec_error(where: str, exc: ValidationError) -> TaskError:
    """A TaskError naming each invalid field of a ValidationError, what is wrong and the fix.

    Args:
        where: The file or task, named first in the message.
        exc: The validation error of a :class:`TaskSpec` or a task.

    Returns:
        The error to raise.
    """
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


def read_task_yaml(path: Path) -> dict[str, Any]:
    """The mapping in a task.yaml file, not yet validated.

    Args:
        path: The file.

    Returns:
        Its top-level mapping.
    """
    try:
        raw = load_yaml(path.read_text(encoding="utf-8"))
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


def yaml_task_fields(path: Path, dev_from_train: int, seed: int) -> dict[str, Any]:
    """The fields of the task a task.yaml describes, its data read and split.

    Args:
        path: The task.yaml; data paths in it are relative to its folder.
        dev_from_train: Dev examples to take from train when there is no dev file.
        seed: Seed of every shuffle.

    Returns:
        Keyword arguments of :class:`~optimizer.tasks.task.Task`.
    """
    raw = read_task_yaml(path)
    try:
        spec = TaskSpec.model_validate(raw)
    except ValidationError as exc:
        raise spec_error(str(path), exc) from None
    cols = (spec.input_column, spec.output_column, spec.alternatives_column)
    train, dev, test = read_split_files(path, spec.data.model_dump(), cols, dev_from_train, seed)
    fields = spec.model_dump(exclude={"data", "input_column", "output_column", "alternatives_column"})
    fields.update(train=train, dev=dev, test=test, source=spec.source or str(path))
    return fields
