"""Packaging: every package is listed in pyproject.toml, and a built wheel carries the bundled tasks
and finds them when installed, from any folder."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import tomllib

from optimizer.tasks.bundled import BUNDLED_PACKAGE, bundled_tasks_dir

REPO = Path(__file__).resolve().parents[1]
BUNDLED = sorted(p.parent.name for p in (REPO / "tasks").glob("*/task.yaml"))


def _setuptools() -> dict:
    return tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]


def test_every_package_is_listed_and_tasks_map_to_the_bundled_package():
    listed = set(_setuptools()["packages"])
    on_disk = {
        ".".join(d.relative_to(REPO).parts)
        for d in [REPO / "optimizer", *(REPO / "optimizer").rglob("*")]
        if d.is_dir() and any(d.glob("*.py"))
    }
    assert on_disk - listed == set(), "add these packages to [tool.setuptools] packages in pyproject.toml"
    assert listed - on_disk == {BUNDLED_PACKAGE}
    assert _setuptools()["package-dir"] == {BUNDLED_PACKAGE: "tasks"}
    assert len(BUNDLED) == 6
    assert bundled_tasks_dir() == REPO / "tasks"  # a source checkout reads its own tasks/


def _build_wheel(tmp_path: Path) -> Path:
    """Build a wheel from a copy of the sources (the build writes build/ and *.egg-info/ in place)."""
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, src / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in ("optimizer", "tasks"):
        shutil.copytree(REPO / name, src / name, ignore=ignore)
    out = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", str(src),
         "-w", str(tmp_path / "dist")],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    (wheel,) = (tmp_path / "dist").glob("apo-*.whl")
    return wheel


@pytest.mark.slow
def test_wheel_carries_the_bundled_tasks_and_finds_them_from_another_folder(tmp_path):
    wheel = _build_wheel(tmp_path)
    names = set(zipfile.ZipFile(wheel).namelist())
    for task in BUNDLED:
        for file in ("task.yaml", "train.jsonl", "dev.jsonl", "test.jsonl"):
            assert f"optimizer/bundled_tasks/{task}/{file}" in names
    assert "optimizer/bundled_tasks/README.md" in names
    modules = {p.relative_to(REPO).as_posix() for p in (REPO / "optimizer").rglob("*.py")}
    assert modules - names == set()
    static = {p.relative_to(REPO).as_posix() for p in (REPO / "optimizer" / "service" / "static").iterdir()}
    assert static and static - names == set(), "the web view's files (package-data of optimizer.service)"
    # Installed (a wheel unpacked on the path), run from a folder without tasks/.
    site, elsewhere = tmp_path / "site", tmp_path / "elsewhere"
    zipfile.ZipFile(wheel).extractall(site)
    elsewhere.mkdir()
    env = {**os.environ, "PYTHONPATH": str(site), "COLUMNS": "300"}
    env.pop("APO_TASKS_DIR", None)
    env.pop("APO_DATA_DIR", None)
    code = ("import optimizer\nfrom optimizer.tasks.bundled import bundled_tasks_dir\n"
            "from optimizer import list_tasks\nprint(optimizer.__file__)\nprint(bundled_tasks_dir())\n"
            "print(sorted(i.name for i in list_tasks() if not i.error))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=elsewhere,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    module, found, listed = out.stdout.splitlines()
    assert Path(module).is_relative_to(site)
    assert Path(found) == site / "optimizer" / "bundled_tasks"
    assert listed == repr(BUNDLED)
