"""The racing benchmark: the exhaustive job's journal replayed under each rule reproduces what a real job with that
rule does (same first-race winner), and exhaustive scoring costs every candidate every dev example."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pytest
from test_demos import fakes, picky_task  # noqa: F401  (the fixture registers the fake targets)

from optimizer import optimize

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "evals"))

import bench_racing  # noqa: E402


def _first_race_winner(run_dir: str) -> str:
    rungs = [json.loads(x) for x in open(f"{run_dir}/events.jsonl") if '"type": "rung"' in x]
    return next(iter([r for r in rungs if r["round"] == 0][-1]["scores"]))


def test_replayed_races_match_real_jobs(tmp_path, monkeypatch):
    monkeypatch.setattr(bench_racing, "load_task", lambda name, **kw: picky_task())
    out = tmp_path / "racing"
    assert bench_racing.main(["--target", "fake:picky", "--tasks", "picky", "--runs-dir", str(tmp_path / "runs"),
                              "--out", str(out)]) == 0
    rows = json.loads(out.with_suffix(".json").read_text())["rows"]
    first = rows[0]
    assert first["race"] == 0 and first["exhaustive_evaluations"] == first["field"] * first["dev"]
    assert first["field"] == 14  # the incumbent, 12 demonstration sets and one of each input's 8 nearest
    for rule in bench_racing.ENGINE_RULES:
        real = optimize(picky_task(), target="fake:picky", seed=0, race_rule=rule, cache=False,
                        runs_dir=tmp_path / rule)
        assert first[rule]["winner"] == _first_race_winner(real.run_dir), rule
        assert first[rule]["evaluations"] < first["exhaustive_evaluations"]
    assert first["halving-prob"]["evaluations"] == first["halving"]["evaluations"]  # the same schedule
    # the incumbent misses every dev example the planted winner gets right: worse on the evidence, not tied
    assert 1 <= first["tied_with_winner"] < first["field"]
    assert first["halving"]["worse_on_evidence"] is False
    assert "| picky | 0 |" in out.with_suffix(".md").read_text()
    again = tmp_path / "again"  # --rebuild replays the finished run without a job
    monkeypatch.setattr(bench_racing, "optimize", None)
    assert bench_racing.main(["--rebuild", "--tasks", "picky", "--runs-dir", str(tmp_path / "runs"),
                              "--out", str(again)]) == 0
    assert json.loads(again.with_suffix(".json").read_text())["rows"] == rows
    # other halving schedules: the default one again gives halving's own result; a longer first rung costs more
    wider = tmp_path / "wider"
    assert bench_racing.main(["--rebuild", "--tasks", "picky", "--runs-dir", str(tmp_path / "runs"),
                              "--schedules", "5:2,50:2", "--out", str(wider)]) == 0
    replays = json.loads(wider.with_suffix(".json").read_text())["rows"][0]["schedules"]
    assert replays["5:2"]["evaluations"] == first["halving"]["evaluations"]
    assert replays["5:2"]["winner"] == first["halving"]["winner"]
    assert replays["50:2"]["evaluations"] > first["halving"]["evaluations"]
    assert "| 5:2 |" in wider.with_suffix(".md").read_text()


def test_schedules_are_checked():
    assert bench_racing._schedules("4:2, 6:3") == [(4, 2), (6, 3)]
    for bad in ("4", "4:1", "0:2", "a:b"):
        with pytest.raises(argparse.ArgumentTypeError):
            bench_racing._schedules(bad)


def test_winner_again_is_how_often_the_winner_wins_on_resampled_dev_examples():
    from optimizer.types import Candidate

    field = [Candidate(id=i, text=i, origin="proposed") for i in ("a", "b", "c")]
    n = 40
    clear = {"a": [(1.0, -0.1)] * n, "b": [(0.0, -2.0)] * n, "c": [(float(i % 2), -1.0) for i in range(n)]}
    assert bench_racing.winner_again(field, clear, "a", resamples=200) == 1.0  # right wherever the others are
    # a and b swap one example each way, equal log-probabilities: a coin toss on resampled splits
    a = [(1.0, -1.0), (0.0, -1.0)] + [(1.0, -1.0)] * (n - 2)
    b = [(0.0, -1.0), (1.0, -1.0)] + [(1.0, -1.0)] * (n - 2)
    tied = {"a": a, "b": b, "c": [(0.0, -1.0)] * n}
    share = bench_racing.winner_again(field, tied, "a", resamples=2000)
    assert 0.55 < share < 0.8  # a wins its ties by the field's order, so more than half, never all
    assert bench_racing.winner_again(field, tied, "b", resamples=2000) == pytest.approx(1 - share)
