"""Where a result came from: versions, git commit, machine, model ids, task fingerprint."""

from __future__ import annotations

import hashlib
import json
import platform
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path

__all__ = ["data_changes", "git_commit", "provenance", "split_fingerprints", "task_fingerprint"]


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def git_commit() -> str | None:
    """The commit of the apo checkout, if apo runs from a git working tree."""
    root = Path(__file__).resolve().parents[1]
    try:
        out = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def task_fingerprint(task) -> str:
    """The sha256 of a task's train, dev and test examples (recorded in config.json; checked by apo eval --from-run)."""
    data = [[e.model_dump() for e in task.split(s)] for s in ("train", "dev", "test")]
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


def split_fingerprints(task) -> dict[str, str]:
    """The sha256 of each split's examples (recorded beside the task fingerprint, to say which split changed)."""
    return {s: hashlib.sha256(json.dumps([e.model_dump() for e in task.split(s)], sort_keys=True).encode()).hexdigest()
            for s in ("train", "dev", "test")}


def data_changes(recorded: dict, task) -> list[str]:
    """How a task's data differs from what a run recorded in config.json (``provenance.task``).

    Args:
        recorded: the run's ``provenance["task"]`` record (sizes, sha256 and, since it was recorded, split_sha256).
        task: the task as loaded now.

    Returns:
        One phrase per change (``dev: 40 -> 41 examples``, ``test: examples edited``); empty when the data is the
        same, or when the run recorded no fingerprint to compare with.
    """
    if not recorded.get("sha256") or recorded["sha256"] == task_fingerprint(task):
        return []
    sizes, splits = recorded.get("sizes") or {}, recorded.get("split_sha256") or {}
    now = split_fingerprints(task)
    changes = []
    for split in ("train", "dev", "test"):
        before, after = sizes.get(split), len(task.split(split))
        if before is not None and before != after:
            changes.append(f"{split}: {before} -> {after} examples")
        elif split in splits and splits[split] != now[split]:
            changes.append(f"{split}: examples edited")
    return changes or ["the examples differ (the run recorded no per-split fingerprints to say where)"]


def provenance(config, task, target, proposer) -> dict:
    """A record of versions, machine, models and task data for config.json."""
    return {
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "apo": _version("apo"),
        "git_commit": git_commit(),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "packages": {p: _version(p) for p in ("torch", "transformers", "pydantic", "gguf")},
        "models": {
            "target": {"id": target.name, "path": getattr(target, "path", None)},
            "proposer": {"id": proposer.name, "path": getattr(proposer, "path", None)},
        },
        "task": {
            "name": task.name,
            "source": task.source,
            "sizes": {s: len(task.split(s)) for s in ("train", "dev", "test")},
            "sha256": task_fingerprint(task),
            "split_sha256": split_fingerprints(task),
        },
    }
