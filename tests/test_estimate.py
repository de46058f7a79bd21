"""The dry-run estimate is an upper bound on what a job really spends, and not a loose one."""

import json
import os
import subprocess
import sys

import pytest

from optimizer import RunConfig, load_task, optimize
from optimizer.run.estimate import estimate, race_cost


def test_race_cost_by_hand():
    # 8 candidates, 30 examples, first rung 5, eta 2: 8x5 + 4x5 + 2x10 + 1x10 = 90
    assert race_cost(8, 30, 5, 2) == 90
    assert race_cost(1, 30, 5, 2) == 30
    assert race_cost(0, 30, 5, 2) == 0


@pytest.mark.parametrize("task,rounds", [("topic", 0), ("past_tense", 2), ("capitalize_words", 1)])
def test_estimate_bounds_real_calls(task, rounds):
    config = RunConfig(task=task, target="fake:upper", cache=False, searcher="ape", ape={"rounds": rounds})
    est = estimate(config, load_task(task))
    result = optimize(task, target="fake:upper", cache=False, searcher="ape", rounds=rounds)
    assert result.calls <= est.calls
    assert result.usage["proposer"]["calls"] <= est.proposer_calls
    assert result.calls >= 0.3 * est.calls


@pytest.mark.parametrize("searcher", ["demos", "joint", "reflect"])
@pytest.mark.parametrize("task", ["topic", "past_tense"])
def test_estimate_bounds_real_calls_of_demos_and_reflect(task, searcher):
    config = RunConfig(task=task, target="fake:upper", cache=False, searcher=searcher)
    est = estimate(config, load_task(task))
    result = optimize(task, target="fake:upper", cache=False, searcher=searcher)
    assert result.calls <= est.calls
    assert result.usage.get("proposer", {}).get("calls", 0) <= est.proposer_calls
    assert result.calls >= 0.3 * est.calls


def test_dry_run_cli_makes_no_run(tmp_path):
    env = {**os.environ, "APO_RUNS_DIR": str(tmp_path / "runs")}
    out = subprocess.run([sys.executable, "-m", "optimizer", "optimize", "topic", "--target", "fake:upper",
                          "--dry-run", "--json"], capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["calls"] == data["proposer_calls"] + data["target_calls"] > 0
    assert not (tmp_path / "runs").exists()


def test_dry_run_prices_api_models_and_not_local_ones():
    local = estimate(RunConfig(task="topic", target="fake:upper"), load_task("topic"))
    assert local.cost_usd == 0.0
    api = estimate(RunConfig(task="topic", target="openai:gpt-4o-mini"), load_task("topic"))
    assert api.cost_usd is not None and 0 < api.cost_usd < 1.0
    unknown = estimate(RunConfig(task="topic", target="openai:some-private-model"), load_task("topic"))
    assert unknown.cost_usd is None
