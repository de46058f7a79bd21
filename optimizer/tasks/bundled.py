"""Where tasks are found by name: the tasks bundled with the package, and the task roots.

The bundled tasks are the repository's top-level ``tasks/`` folder. The build installs that
folder as the package ``optimizer.bundled_tasks`` (see ``[tool.setuptools]`` in
``pyproject.toml``), so an installed copy, editable or not, finds it with
:mod:`importlib.resources`; a source checkout that is not installed reads its own ``tasks/``.
"""

from __future__ import annotations

import importlib.resources
import os
from pathlib import Path

__all__ = ["BUNDLED_PACKAGE", "bundled_tasks_dir", "task_roots"]

BUNDLED_PACKAGE = "optimizer.bundled_tasks"
"""The package that the repository's ``tasks/`` folder is installed as."""


def _checkout_tasks() -> Path | None:
    """The ``tasks/`` folder of the source checkout this package runs from, if it runs from one."""
    checkout = Path(__file__).resolve().parents[2]
    tasks = checkout / "tasks"
    return tasks if (checkout / "pyproject.toml").is_file() and (tasks / "__init__.py").is_file() else None


def bundled_tasks_dir() -> Path | None:
    """The folder of the tasks bundled with apo (``capitalize_words``, ``topic``, …).

    A source checkout uses its own ``tasks/`` folder (the folder an editable install maps
    :data:`BUNDLED_PACKAGE` to), so that two checkouts never read each other's tasks; an
    installed copy reads the package data of :data:`BUNDLED_PACKAGE`.

    Returns:
        The folder holding ``<name>/task.yaml`` for each bundled task, or None when neither is there.
    """
    checkout = _checkout_tasks()
    if checkout is not None:
        return checkout
    try:
        resources = importlib.resources.files(BUNDLED_PACKAGE)
    except ModuleNotFoundError:
        return None
    path = Path(str(resources))  # a package installed from a wheel is a plain folder
    return path if path.is_dir() else None


def task_roots() -> list[Path]:
    """Folders searched for task names, in order, without duplicates.

    Returns:
        Each folder of ``$APO_TASKS_DIR`` (``os.pathsep``-separated, if set), ``./tasks`` and
        the bundled tasks (:func:`bundled_tasks_dir`); folders that do not exist are included.
    """
    env = [p for p in os.environ.get("APO_TASKS_DIR", "").split(os.pathsep) if p]
    bundled = bundled_tasks_dir()
    candidates: list[str | Path] = [*env, Path.cwd() / "tasks", *([bundled] if bundled else [])]
    roots: list[Path] = []
    for candidate in candidates:
        path = Path(candidate).expanduser().resolve()
        if path not in roots:
            roots.append(path)
    return roots
