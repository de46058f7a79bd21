"""The Python API as the command line uses it: runs, the cache and the models table."""

from __future__ import annotations

import pytest

from optimizer import (
    RunConfig,
    UsageError,
    cache_stats,
    clear_cache,
    list_models,
    list_runs,
    optimize,
    show_run,
)

SMALL = {"target": "fake:upper", "dev_limit": 6, "test_limit": 6}


def test_runs_are_listed_and_shown(tmp_path):
    runs = tmp_path / "runs"
    first = optimize("capitalize_words", runs_dir=runs, searcher="ape", rounds=0, candidates=2, **SMALL)
    second = optimize(RunConfig.from_options("topic", searcher="ape", rounds=0, candidates=2, **SMALL), runs_dir=runs)
    listed = list_runs(runs)
    assert {r.id for r in listed} == {first.run_id, second.run_id}
    assert all(r.status == "complete" and r.config["target"] == "fake:upper" for r in listed)
    shown = show_run(first.run_id, runs)
    assert shown.result["best"]["text"] == first.best.text and shown.scores > 0
    assert shown.lineage[-1].id == first.best.candidate
    assert shown.wrong is not None and shown.wrong.n_test == 6
    with pytest.raises(UsageError, match="no run"):
        show_run("no-such-run", runs)


def test_cache_stats_and_clear(tmp_path, monkeypatch):
    monkeypatch.setenv("APO_CACHE_DIR", str(tmp_path / "cache"))
    optimize("capitalize_words", runs_dir=tmp_path / "runs", searcher="ape", rounds=0, candidates=2, **SMALL)
    stats = cache_stats()
    assert stats.responses.get("fake:upper", 0) > 0 and stats.path.startswith(str(tmp_path))
    assert clear_cache().deleted == sum(stats.responses.values())
    assert cache_stats().responses == {}


def test_models_table_names_the_default_first():
    models = list_models()
    assert models[0].default and sum(m.default for m in models) == 1
    assert {"smollm2-135m-instruct", "gemma3-270m", "splade-tiny"} <= {m.name for m in models}
