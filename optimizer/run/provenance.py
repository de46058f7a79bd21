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

__all__ = ["git_commit", "provenance", "task_fingerprint"]


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
        },
    }
