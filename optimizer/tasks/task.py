"""Tasks: examples split into train/dev/test plus how to score them, and how to load them by name.

:func:`load_task` takes a path, a task name or ``hf:``/``datasets:`` spec and resolves it
through the registered kinds of task (:mod:`optimizer.tasks.loaders`: task folders and
task.yaml files, data files, instruction-induction tasks, ``sst2`` and ``lama:P<id>``);
:func:`list_tasks` lists every task each kind offers by name. The task.yaml format is described
in :mod:`optimizer.tasks.spec`. Every malformed input raises :class:`~optimizer.errors.TaskError`
naming the file, the line or field, and the fix.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from optimizer.errors import TaskError, UsageError
from optimizer.tasks.files import SPLITS, SplitName
from optimizer.tasks.loaders import LOADERS
from optimizer.tasks.metrics import Metric, resolve_metric
from optimizer.tasks.registry import LoadRequest
from optimizer.tasks.spec import check_metric, spec_error
from optimizer.types import Example

__all__ = ["Task", "TaskInfo", "build_task", "list_tasks", "load_task"]


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
        return check_metric(value)

    @model_validator(mode="after")
    def _labels_for_label_metric(self) -> Task:
        if self.metric == "label" and not self.labels:
            raise ValueError("field `labels`: metric 'label' needs `labels`; "
                             "fix: add the label set, e.g. labels: [positive, negative]")
        if self.labels:
            used = {a.strip().lower() for split in (self.train, self.dev, self.test) for ex in split
                    for a in (ex.output, *ex.alternatives)}
            unused = [label for label in self.labels if label.strip().lower() not in used]
            if unused:
                raise ValueError(f"field `labels`: {', '.join(map(repr, unused))} "
                                 f"{'is' if len(unused) == 1 else 'are'} not the output of any example; "
                                 "fix: correct the label's spelling, or remove it from `labels`")
        if self.shots > len(self.train):
            raise ValueError(f"field `shots`: {self.shots} demonstrations, but the train split has only "
                             f"{len(self.train)} examples; fix: give shots at most {len(self.train)}, or add "
                             "training examples")
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

    def with_train_limit(self, limit: int | None, seed: int) -> Task:
        """The task with at most ``limit`` training examples: a sample chosen by the seed, in the split's order.

        The sample is the ``limit`` examples ranking first by a hash of the seed and their id, so that a larger
        limit keeps every example of a smaller one (learning curves grow one training set), and applying the
        same limit again changes nothing.

        Example::

            task.with_train_limit(32, seed=0).train   # 32 of the train split's examples

        Args:
            limit: the most training examples (None: all of them).
            seed: the run seed.
        """
        if limit is None or limit >= len(self.train):
            return self

        def rank(ex: Example) -> str:
            return hashlib.sha256(f"{seed}:train:{ex.id}".encode()).hexdigest()

        kept = {ex.id for ex in sorted(self.train, key=rank)[:limit]}
        return self.model_copy(update={"train": [ex for ex in self.train if ex.id in kept],
                                       "shots": min(self.shots, limit)})

    def scorer(self) -> Metric:
        """The task's metric as a function ``(prediction, answers) -> float``.

        Returns:
            The resolved metric, with the label set bound for ``label``.
        """
        return resolve_metric(self.metric, self.labels)


class TaskInfo(BaseModel):
    """One line of :func:`list_tasks`."""

    model_config = ConfigDict(use_attribute_docstrings=True)

    name: str
    """The name that :func:`load_task` accepts."""
    kind: str
    """The task's kind (its loader): ``yaml``, ``instruction_induction``, ``sst2``, ``lama`` or a registered one."""
    path: str
    """The file that defines the task: the task.yaml, the instruction-induction ``induce`` file,
    the SST-2 training file or the LAMA relation's test file."""
    metric: str = ""
    """The task's metric."""
    sizes: dict[str, int] = {}
    """Number of examples per split."""
    error: str = ""
    """Why the task failed to load (then ``sizes`` is empty)."""


# ----------------------------------------------------------------------------- building tasks


MAX_DERIVED_TOKENS = 256
"""The most answer tokens a task gets without saying ``max_output_tokens`` (a runaway answer costs this much)."""


def longest_answer_words(*splits: list[Example]) -> int:
    """Words in the longest gold output (4 when there is none)."""
    return max((len(ex.output.split()) for split in splits for ex in split), default=4)


def _derived_max_tokens(*splits: list[Example]) -> int:
    """Answer token limit from the longest gold output: 3 per word plus 4 (generous), at most 256."""
    return min(MAX_DERIVED_TOKENS, longest_answer_words(*splits) * 3 + 4)


def build_task(fields: dict[str, Any], overrides: Mapping[str, Any], where: str) -> Task:
    """A task from the fields a loader read, with the caller's overrides applied.

    Args:
        fields: Keyword arguments of :class:`Task` (``max_output_tokens`` may be missing or None).
        overrides: Task fields that replace the loaded ones.
        where: The file or spec the fields came from, named in error messages.

    Returns:
        The validated task.

    Raises:
        TaskError: When a split is empty or a field is invalid.
    """
    fields.update(overrides)
    if "max_output_tokens" not in fields or fields["max_output_tokens"] is None:
        fields["max_output_tokens"] = _derived_max_tokens(fields["train"], fields["dev"], fields["test"])
    for split in SPLITS:
        if not fields[split]:
            raise TaskError(f"{where}: the {split} split is empty; fix: add examples to it")
    try:
        return Task(**fields)
    except ValidationError as exc:
        raise spec_error(where, exc) from None


# ----------------------------------------------------------------------------- loading by name

_OVERRIDABLE = frozenset(Task.model_fields) - set(SPLITS)


def _resolve_data_dir(data_dir: str | Path | None) -> Path | None:
    given = data_dir or os.environ.get("APO_DATA_DIR")
    if not given:
        return None
    path = Path(given).expanduser()
    if not path.is_dir():
        origin = "--data-dir / data_dir" if data_dir else "APO_DATA_DIR"
        raise UsageError(f"{origin} {str(path)!r} " + ("is a file, not a folder" if path.exists() else
                         "does not exist") + "; fix: give the folder that holds the task data (see `apo tasks "
                         "list --data-dir DIR`), or leave it out for the bundled tasks")
    return path


def _not_found(name: str, data_dir: Path | None) -> TaskError:
    looked = "; ".join(LOADERS.looked(name, data_dir))
    hint = "" if data_dir else " No data_dir was given (pass data_dir= / --data-dir, or set APO_DATA_DIR)."
    available = ", ".join(LOADERS.names(data_dir)) or "none"
    return TaskError(
        f"no task named {name!r}. Looked for a file or folder {name!r}, then: {looked}.{hint} "
        f"Available: {available}. Fix: pass one of these names or a path to a task."
    )


def load_task(
    spec: str | Path,
    *,
    data_dir: str | Path | None = None,
    dev_from_train: int = 200,
    seed: int = 0,
    **options: Any,
) -> Task:
    """Load a task from a path, a task name or a ``hf:``/``datasets:`` dataset.

    Args:
        spec: A task folder, task.yaml or data file; a task name (searched in
            :func:`~optimizer.tasks.bundled.task_roots`, then ``data_dir``; instruction-induction
            tasks, ``sst2`` and ``lama:P<id>`` under ``data_dir``); or ``hf:<name>`` /
            ``datasets:<builder>``. The kinds are tried in the order of :data:`~optimizer.tasks.loaders.LOADERS`.
        data_dir: Folder with more tasks: ``<name>/task.yaml`` folders, instruction-induction
            data (``induce/``, ``execute/``, ``annotations/``, also found under
            ``data_dir/instruction_induction``), ``sst2/`` and ``lama_trex/``. Default: ``$APO_DATA_DIR``.
        dev_from_train: Dev examples taken from the training examples when the task has no dev
            split (at most half of them; instruction induction: sampled from induce/): enough to race
            on 50 and confirm the finalists on 100 more (``selection.confirm_limit``). SST-2,
            LAMA and single data files have fixed dev splits.
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
        UsageError: For an unknown option or a dev_from_train below 1.
    """
    if dev_from_train < 1:
        raise UsageError(f"dev_from_train must be at least 1, got {dev_from_train}")
    root_dir = _resolve_data_dir(data_dir)
    ref = LOADERS.find(spec, root_dir)
    if ref is None:
        raise _not_found(str(spec), root_dir)
    loader = LOADERS.get(ref.kind)
    overrides = {k: v for k, v in options.items() if k in _OVERRIDABLE}
    extra = {k: v for k, v in options.items() if k not in _OVERRIDABLE}
    if extra and not loader.takes_options:
        raise UsageError(
            f"unknown task option(s) {', '.join(sorted(extra))}; allowed: {', '.join(sorted(_OVERRIDABLE))}"
        )
    fields = loader.load(ref, LoadRequest(root_dir, dev_from_train, seed, extra))
    return build_task(fields, overrides, ref.path)


def list_tasks(data_dir: str | Path | None = None) -> list[TaskInfo]:
    """Every task that :func:`load_task` finds by name, loaded to report its sizes.

    Args:
        data_dir: Folder with more tasks, as in :func:`load_task`; default ``$APO_DATA_DIR``.

    Returns:
        One entry per task name in resolution order (bundled and other task folders,
        instruction-induction tasks, ``sst2``, ``lama:P<id>`` …); a task that fails to load is
        listed with its error instead of sizes.
    """
    root_dir = _resolve_data_dir(data_dir)
    infos = []
    for name, ref in LOADERS.names(root_dir).items():
        info = TaskInfo(name=name, kind=ref.kind, path=ref.path)
        try:
            fields = LOADERS.get(ref.kind).load(ref, LoadRequest(root_dir, 50, 0))
            task = build_task(fields, {}, ref.path)
        except TaskError as exc:
            info.error = str(exc)
        else:
            info.metric = task.metric
            info.sizes = {s: len(task.split(s)) for s in SPLITS}
        infos.append(info)
    return infos
