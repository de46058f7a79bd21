"""The registry of task loaders: one entry per kind of task, in the order names are resolved.

Each kind says how to recognise a task name or path (``find``), how to read the task it found
(``load``), which names it offers under a data folder (``names``, for :func:`list_tasks`) and
where it looked for a name (``looked``, for the message when no kind claims it). The built-in
kinds are registered in :mod:`optimizer.tasks.loaders`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["LoadRequest", "LoaderRegistry", "TaskLoader", "TaskRef"]


@dataclass(frozen=True)
class TaskRef:
    """A task that a loader recognised: what it is called and where its data is."""

    kind: str
    """The kind of the loader that found it, e.g. ``yaml``."""
    name: str
    """The name that :func:`~optimizer.tasks.task.load_task` accepts for it."""
    path: str
    """The file that defines it (a task.yaml, a data file) or the dataset spec; named in errors."""
    root: Path | None = None
    """The folder its data lives in, for kinds that need one."""


@dataclass(frozen=True)
class LoadRequest:
    """How to load a task: the settings of :func:`~optimizer.tasks.task.load_task`."""

    data_dir: Path | None
    """The data folder (``--data-dir``), or None."""
    dev_from_train: int
    """Dev examples taken from the training examples when the task has no dev split."""
    seed: int
    """Seed of every shuffle and sample."""
    options: Mapping[str, Any] = field(default_factory=dict)
    """Options for the loader itself (only kinds with ``takes_options`` get any)."""


def _no_names(data_dir: Path | None) -> list[TaskRef]:
    return []


def _looked_nowhere(name: str, data_dir: Path | None) -> list[str]:
    return []


@dataclass(frozen=True)
class TaskLoader:
    """One kind of task: how to recognise it, load it and list what is available."""

    kind: str
    """Short name of the kind, shown by ``apo tasks list``."""
    find: Callable[[str | Path, Path | None], TaskRef | None]
    """``(spec, data_dir) -> TaskRef`` when this kind claims the spec, else None."""
    load: Callable[[TaskRef, LoadRequest], dict[str, Any]]
    """``(ref, request) -> fields``: keyword arguments of :class:`~optimizer.tasks.task.Task`."""
    names: Callable[[Path | None], list[TaskRef]] = _no_names
    """``data_dir -> refs``: every task of this kind that can be loaded by name."""
    looked: Callable[[str, Path | None], list[str]] = _looked_nowhere
    """``(name, data_dir) -> places``: where ``find`` looked for a name, for error messages."""
    takes_options: bool = False
    """Whether options that are not task fields go to this loader (else they are an error)."""


class LoaderRegistry:
    """Task loaders by kind; names resolve through them in registration order.

    Args:
        loaders: The loaders to start with, in resolution order.
    """

    def __init__(self, loaders: Iterable[TaskLoader] = ()) -> None:
        self._loaders: dict[str, TaskLoader] = {}
        for loader in loaders:
            self.register(loader)

    def register(self, loader: TaskLoader) -> TaskLoader:
        """Add a kind of task, or replace the loader of a kind already registered (keeping its place).

        Args:
            loader: The loader.

        Returns:
            The loader, so that the call can be used as an expression.
        """
        self._loaders[loader.kind] = loader
        return loader

    def kinds(self) -> list[str]:
        """The registered kinds, in resolution order.

        Returns:
            Their names.
        """
        return list(self._loaders)

    def get(self, kind: str) -> TaskLoader:
        """The loader of one kind.

        Args:
            kind: A registered kind.

        Returns:
            Its loader.
        """
        return self._loaders[kind]

    def find(self, spec: str | Path, data_dir: Path | None) -> TaskRef | None:
        """The task a spec names, as the first kind that claims it finds it.

        Args:
            spec: A task name or path.
            data_dir: The data folder, or None.

        Returns:
            The task, or None when no kind claims the spec.
        """
        for loader in self._loaders.values():
            ref = loader.find(spec, data_dir)
            if ref is not None:
                return ref
        return None

    def names(self, data_dir: Path | None) -> dict[str, TaskRef]:
        """Every task that can be loaded by name; when two kinds offer a name, the first kind's.

        Args:
            data_dir: The data folder, or None.

        Returns:
            Task name -> the task, in resolution order.
        """
        found: dict[str, TaskRef] = {}
        for loader in self._loaders.values():
            for ref in loader.names(data_dir):
                found.setdefault(ref.name, ref)
        return found

    def looked(self, name: str, data_dir: Path | None) -> list[str]:
        """Where the kinds looked for a name.

        Args:
            name: The task name.
            data_dir: The data folder, or None.

        Returns:
            The places, in resolution order.
        """
        return [place for loader in self._loaders.values() for place in loader.looked(name, data_dir)]
