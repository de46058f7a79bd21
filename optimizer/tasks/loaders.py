"""The built-in kinds of task, registered in :data:`LOADERS` in the order names resolve:

1. ``dataset``: ``hf:<name>`` or ``datasets:<builder>`` (:mod:`optimizer.tasks.hf_datasets`);
2. ``yaml``: a folder holding ``task.yaml``, a ``.yaml``/``.yml`` file, or a task name:
   ``<root>/<name>/task.yaml`` under the task roots (:func:`~optimizer.tasks.bundled.task_roots`,
   the bundled tasks among them), then under ``data_dir`` (:mod:`optimizer.tasks.spec`);
3. ``file``: one data file (``.jsonl``, ``.json``, ``.csv``, ``.tsv``) split 60/20/20;
4. ``instruction_induction``: ``<name>`` under ``data_dir`` or ``data_dir/instruction_induction``
   (:mod:`optimizer.tasks.induction`);
5. ``sst2`` and 6. ``lama`` (``lama:P17``, one per relation file): AutoPrompt's cloze
   benchmarks under ``data_dir`` (:mod:`optimizer.tasks.cloze_data`).

A path that does not exist is an error, never looked up as a name. Another kind of task is
added with ``register_loader(TaskLoader(...))``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from optimizer.errors import TaskError
from optimizer.tasks.bundled import task_roots
from optimizer.tasks.cloze_data import (
    cloze_task_fields,
    lama_relation,
    lama_test_files,
    sst2_file,
)
from optimizer.tasks.files import file_fields
from optimizer.tasks.hf_datasets import dataset_fields, is_dataset_spec
from optimizer.tasks.induction import induction_fields, induction_roots
from optimizer.tasks.registry import LoaderRegistry, LoadRequest, TaskLoader, TaskRef
from optimizer.tasks.rows import DATA_SUFFIXES
from optimizer.tasks.spec import yaml_task_fields

__all__ = ["LOADERS", "register_loader"]

_YAML_SUFFIXES = (".yaml", ".yml")


def _as_name(spec: str | Path) -> str | None:
    """``spec`` when it is a task name: a string that neither looks like a path nor exists as one."""
    if not isinstance(spec, str):
        return None
    looks_like_path = "/" in spec or "\\" in spec or Path(spec).suffix.lower() in (*DATA_SUFFIXES, *_YAML_SUFFIXES)
    return None if looks_like_path or Path(spec).expanduser().exists() else spec


# ----------------------------------------------------------------------------- dataset


def _find_dataset(spec: str | Path, data_dir: Path | None) -> TaskRef | None:
    return TaskRef("dataset", spec, spec) if isinstance(spec, str) and is_dataset_spec(spec) else None


def _load_dataset(ref: TaskRef, request: LoadRequest) -> dict[str, Any]:
    return dataset_fields(ref.name, dict(request.options), request.dev_from_train, request.seed)


# ----------------------------------------------------------------------------- yaml


def _yaml_roots(data_dir: Path | None) -> list[Path]:
    return [*task_roots(), *([data_dir] if data_dir else [])]


def _find_yaml(spec: str | Path, data_dir: Path | None) -> TaskRef | None:
    path = Path(str(spec)).expanduser()
    if path.is_dir():
        yaml_file = next((path / n for n in ("task.yaml", "task.yml") if (path / n).is_file()), None)
        if yaml_file is None:
            raise TaskError(
                f"{path}: folder has no task.yaml; fix: add one, or pass a data file ({', '.join(DATA_SUFFIXES)})"
            )
        return TaskRef("yaml", path.name, str(yaml_file), path)
    if path.is_file() and path.suffix.lower() in _YAML_SUFFIXES:
        return TaskRef("yaml", path.stem, str(path), path.parent)
    name = _as_name(spec)
    if name is None:
        return None
    return next((ref for ref in _yaml_names(data_dir) if ref.name == name), None)


def _yaml_names(data_dir: Path | None) -> list[TaskRef]:
    return [
        TaskRef("yaml", file.parent.name, str(file), root)
        for root in _yaml_roots(data_dir) if root.is_dir()
        for file in sorted(root.glob("*/task.yaml"))
    ]


def _yaml_looked(name: str, data_dir: Path | None) -> list[str]:
    return [f"{root}/{name}/task.yaml" for root in _yaml_roots(data_dir)]


def _load_yaml(ref: TaskRef, request: LoadRequest) -> dict[str, Any]:
    return yaml_task_fields(Path(ref.path), request.dev_from_train, request.seed)


# ----------------------------------------------------------------------------- one data file


def _find_file(spec: str | Path, data_dir: Path | None) -> TaskRef | None:
    path = Path(str(spec)).expanduser()
    if path.is_file():
        return TaskRef("file", path.stem, str(path))
    if _as_name(spec) is None and not path.exists():
        raise TaskError(f"{spec}: no such file or folder")
    return None


def _load_file(ref: TaskRef, request: LoadRequest) -> dict[str, Any]:
    return file_fields(Path(ref.path), request.seed)


# ----------------------------------------------------------------------------- instruction induction


def _induction_names(data_dir: Path | None) -> list[TaskRef]:
    return [
        TaskRef("instruction_induction", file.stem, str(file), root)
        for root in induction_roots(data_dir)
        for file in sorted((root / "induce").glob("*.json"))
    ]


def _find_induction(spec: str | Path, data_dir: Path | None) -> TaskRef | None:
    name = _as_name(spec)
    if name is None:
        return None
    for root in induction_roots(data_dir):
        file = root / "induce" / f"{name}.json"
        if file.is_file():
            return TaskRef("instruction_induction", name, str(file), root)
    return None


def _induction_looked(name: str, data_dir: Path | None) -> list[str]:
    return [f"{root}/induce/{name}.json" for root in induction_roots(data_dir)]


def _load_induction(ref: TaskRef, request: LoadRequest) -> dict[str, Any]:
    """An instruction-induction task: dev and train sampled from induce/, test = execute/."""
    assert ref.root is not None
    return induction_fields(ref.name, ref.root, request.dev_from_train, request.seed)


# ----------------------------------------------------------------------------- cloze benchmarks


def _find_sst2(spec: str | Path, data_dir: Path | None) -> TaskRef | None:
    if _as_name(spec) != "sst2":
        return None
    return TaskRef("sst2", "sst2", str(sst2_file(data_dir) or "sst2"))


def _sst2_names(data_dir: Path | None) -> list[TaskRef]:
    file = sst2_file(data_dir)
    return [TaskRef("sst2", "sst2", str(file))] if file else []


def _find_lama(spec: str | Path, data_dir: Path | None) -> TaskRef | None:
    name = _as_name(spec)
    relation = lama_relation(name) if name else None
    if name is None or relation is None:
        return None
    found = next((f for f in lama_test_files(data_dir) if f.stem == relation), None)
    return TaskRef("lama", name, str(found or name))


def _lama_names(data_dir: Path | None) -> list[TaskRef]:
    return [TaskRef("lama", f"lama:{file.stem}", str(file)) for file in lama_test_files(data_dir)]


def _load_cloze(ref: TaskRef, request: LoadRequest) -> dict[str, Any]:
    return cloze_task_fields(ref.name, request.data_dir, request.seed)


LOADERS = LoaderRegistry([
    TaskLoader("dataset", _find_dataset, _load_dataset, takes_options=True),
    TaskLoader("yaml", _find_yaml, _load_yaml, _yaml_names, _yaml_looked),
    TaskLoader("file", _find_file, _load_file),
    TaskLoader("instruction_induction", _find_induction, _load_induction, _induction_names, _induction_looked),
    TaskLoader("sst2", _find_sst2, _load_cloze, _sst2_names),
    TaskLoader("lama", _find_lama, _load_cloze, _lama_names),
])
"""The kinds of task that :func:`~optimizer.tasks.task.load_task` and ``list_tasks`` know."""

register_loader = LOADERS.register
"""Add a kind of task (or replace one): ``register_loader(TaskLoader(kind, find, load, names))``."""
