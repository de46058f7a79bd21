"""evals/replay_finalists.py: replaying a run with its own number of finalists and its own correction gives what it
shipped; the max-T correction, replayed on a run's recorded confirmation scores, ships where Holm kept the incumbent."""

from __future__ import annotations

import json
import sys
import tarfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "evals"))

import replay_finalists  # noqa: E402
from bench_search import _above, _below, load_result  # noqa: E402

from optimizer.types import RunResult  # noqa: E402

REPORT = ROOT / "evals" / "results" / "search_demos_grown"


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> list[tuple[dict, Path, RunResult]]:
    """The committed benchmark's rows with their runs' results (read from its archive, no model call)."""
    rows = json.loads(REPORT.with_suffix(".json").read_text())["rows"]
    folder = tmp_path_factory.mktemp("runs")
    with tarfile.open(REPORT.with_name(REPORT.name + "_runs.tar.gz"), "r:gz") as tar:
        tar.extractall(folder, members=[m for m in tar.getmembers() if m.name.endswith("/result.json")],
                       filter="data")
    return [(row, folder / row["run_id"], load_result(folder / row["run_id"])) for row in rows]


def test_replay_with_the_runs_own_finalists_gives_what_they_shipped(runs):
    assert len(runs) == 90
    for row, run, result in runs:  # these runs were made when apo corrected with Holm
        k = len(result.selection.finalists)
        want = "better" if _above(row["vs_incumbent"]) else "worse" if _below(row["vs_incumbent"]) else "same"
        assert replay_finalists.replay(run, result, k, correction="holm") == want, (row["task"], row["seed"])


def test_a_pick_the_run_never_scored_on_test_is_unknown_or_scored_on_request(runs):
    # runs where the first finalist passed its own test, but another one shipped and it was not scored on test
    other = [(run, r) for _, run, r in runs if replay_finalists.replay(run, r, 1, correction="holm") == "unknown"]
    assert other, "the benchmark has such runs"
    run, result = other[0]
    first = result.selection.finalists[0]
    assert first.p_value < 0.05 and result.best.candidate != first.candidate
    asked = []

    def score(candidate):  # stands in for scoring on test: the incumbent's own scores, so no gain
        asked.append(candidate)
        inc = result.incumbent_prompt()
        return inc.model_copy(update={"candidate": candidate})

    assert replay_finalists.replay(run, result, 1, score, correction="holm") == "same"
    assert asked == [first.candidate]


def test_max_t_ships_the_finalists_holm_held_back_when_they_answer_alike(tmp_path):
    # past_tense, seed 0, 8 nearest: three finalists each won 5 more confirmation examples than the incumbent
    # (p 0.031 each); Holm tripled that to 0.092 and kept the incumbent, though the first was +0.10 better on test
    archive = ROOT / "evals" / "results" / "search_demos_nearest8_runs.tar.gz"
    with tarfile.open(archive, "r:gz") as tar:
        names = [m for m in tar.getmembers() if "-past_tense-" in m.name]
        tar.extractall(tmp_path, members=names, filter="data")
    [run] = [p for p in tmp_path.iterdir() if p.is_dir()]
    result = load_result(run)
    sel = result.selection
    assert sel.verdict == "no significant improvement" and [f.p_adjusted for f in sel.finalists] == [0.0924] * 3
    adjusted = replay_finalists.adjusted(run, result, 3, "max-t")
    assert adjusted == pytest.approx([min(f.p_value for f in sel.finalists)] * 3, abs=0.002)  # no penalty
    assert replay_finalists.replay(run, result, 3, correction="holm") == "same"
    assert replay_finalists.replay(run, result, 3, correction="max-t") == "better"
