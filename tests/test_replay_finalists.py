"""evals/replay_finalists.py: replaying a run with its own number of finalists gives what it shipped."""

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
def runs(tmp_path_factory) -> list[tuple[dict, RunResult]]:
    """The committed benchmark's rows with their runs' results (read from its archive, no model call)."""
    rows = json.loads(REPORT.with_suffix(".json").read_text())["rows"]
    folder = tmp_path_factory.mktemp("runs")
    with tarfile.open(REPORT.with_name(REPORT.name + "_runs.tar.gz"), "r:gz") as tar:
        tar.extractall(folder, members=[m for m in tar.getmembers() if m.name.endswith("/result.json")],
                       filter="data")
    return [(row, load_result(folder / row["run_id"])) for row in rows]


def test_replay_with_the_runs_own_finalists_gives_what_they_shipped(runs):
    assert len(runs) == 90
    for row, result in runs:
        k = len(result.selection.finalists)
        want = "better" if _above(row["vs_incumbent"]) else "worse" if _below(row["vs_incumbent"]) else "same"
        assert replay_finalists.replay(result, k) == want, (row["task"], row["seed"])


def test_a_pick_the_run_never_scored_on_test_is_unknown_or_scored_on_request(runs):
    # runs where the first finalist passed its own test, but another one shipped and it was not scored on test
    other = [r for _, r in runs if replay_finalists.replay(r, 1) == "unknown"]
    assert other, "the benchmark has such runs"
    result = other[0]
    first = result.selection.finalists[0]
    assert first.p_value < 0.05 and result.best.candidate != first.candidate
    asked = []

    def score(candidate):  # stands in for scoring on test: the incumbent's own scores, so no gain
        asked.append(candidate)
        inc = result.incumbent_prompt()
        return inc.model_copy(update={"candidate": candidate})

    assert replay_finalists.replay(result, 1, score) == "same"
    assert asked == [first.candidate]
