"""Shared fixtures: every test gets its own response cache and runs folder."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DATA_DIR = Path(os.environ.get("APO_DATA_DIR", REPO.parent / "shared" / "data"))


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    """Point the response cache and the runs folder at this test's temporary folder.

    Downloaded and converted models stay in the user's cache, shared between test runs.
    """
    monkeypatch.setattr("optimizer.models.cache.default_cache_path", lambda: tmp_path / "responses.sqlite")
    monkeypatch.setenv("APO_RUNS_DIR", str(tmp_path / "runs"))
    yield
