"""--train-limit: every searcher sees at most N training examples, a seeded sample that grows by nesting, recorded
in the result and shown as separate leaderboard rows (the learning curve's points)."""

from __future__ import annotations

import json

import pytest

from optimizer import RunConfig, build_leaderboard, load_task, optimize
from optimizer.errors import UsageError
from optimizer.report.curves import learning_curves
from optimizer.report.html import render_html
from optimizer.report.text import columns, render_markdown
from optimizer.tasks.nearest import nearest_k


def test_the_sample_is_seeded_nested_and_keeps_the_split_order():
    task = load_task("capitalize_words")
    ids = [ex.id for ex in task.train]
    small, large = task.with_train_limit(8, seed=0), task.with_train_limit(32, seed=0)
    assert len(small.train) == 8 and len(large.train) == 32
    assert {ex.id for ex in small.train} < {ex.id for ex in large.train}  # a larger limit keeps the smaller one
    assert [ex.id for ex in small.train] == [i for i in ids if i in {ex.id for ex in small.train}]
    assert small.with_train_limit(8, seed=0).train == small.train  # applying it again changes nothing
    assert {ex.id for ex in task.with_train_limit(8, seed=1).train} != {ex.id for ex in small.train}
    assert task.with_train_limit(None, seed=0) is task and task.with_train_limit(len(ids), seed=0) is task
    assert small.shots == min(task.shots, 8) and small.dev == task.dev and small.test == task.test
    assert task.with_train_limit(2, seed=0).shots == 2  # the default shots fit in the sample


def test_every_searcher_draws_only_from_the_sample(tmp_path):
    allowed = {ex.id for ex in load_task("capitalize_words").with_train_limit(6, seed=0).train}
    result = optimize("capitalize_words", target="fake:upper", searcher="demos", train_limit=6, cache=False,
                      runs_dir=tmp_path)
    assert result.selection.sizes["train"] == 6
    shown = {d for c in result.candidates if nearest_k(c.demos) is None for d in (c.demos or ())}
    assert shown and shown <= allowed  # every demonstration set searched came from the 6
    assert [nearest_k(c.demos) for c in result.candidates if c.origin == "nearest"] == [6]  # 8 nearest of 6: all
    events = (tmp_path / result.run_id / "events.jsonl").read_text()
    config = json.loads((tmp_path / result.run_id / "config.json").read_text())["config"]
    assert config["train_limit"] == 6 and '"demos"' in events


def test_runs_at_several_sizes_are_rows_of_one_board(tmp_path):
    for limit in (4, 12, None):
        optimize("capitalize_words", target="fake:upper", searcher="ape", rounds=0, train_limit=limit, cache=False,
                 runs_dir=tmp_path)
    board = build_leaderboard(tmp_path)
    assert sorted((r.best.train_limit or 0, r.best.train_examples) for r in board.rows) == [(0, 40), (4, 4), (12, 12)]
    assert "train examples" in columns(board)
    md = render_markdown(board)
    assert "| 4 |" in md and "| 12 |" in md
    # the learning curve: one line (ape) over the three sizes, as a table and as a plot
    curve = learning_curves(board)
    assert [(c.task, c.sizes, list(c.lines)) for c in curve] == [("capitalize_words", [4, 12, 40], ["ape"])]
    assert [p.acc for p in curve[0].lines["ape"]] == [
        r.best.test.acc for r in sorted(board.rows, key=lambda r: r.best.train_examples)]
    assert "Learning curve of capitalize\\_words on fake:upper: test accuracy" in md
    assert "| searcher | 4 | 12 | 40 |" in md
    html = render_html(board)
    assert html.count('class="point"') == 3 and 'id="curve-1"' in html and html.count('class="ci"') == 3
    one = build_leaderboard(tmp_path, searcher=["ape"], task=["capitalize_words"])
    assert learning_curves(one.model_copy(update={"rows": one.rows[:1]})) == []  # one size: no curve


def test_more_shots_than_the_sample_is_refused(tmp_path):
    with pytest.raises(UsageError, match=r"--shots 5 with --train-limit 3: the demonstrations are drawn from the 3 "
                                         r"training examples the limit keeps; fix: give --shots 3 or less"):
        optimize("capitalize_words", target="fake:upper", shots=5, train_limit=3, runs_dir=tmp_path)
    assert not any(tmp_path.iterdir())


def test_a_stored_soft_train_size_becomes_the_train_limit():
    config = RunConfig.model_validate({"task": "t", "searcher": "lora", "soft": {"train_size": 16, "steps": 5}})
    assert config.train_limit == 16 and config.soft.steps == 5


def test_the_dry_run_refuses_what_the_run_refuses(tmp_path, capsys):
    from optimizer.cli.main import main

    assert main(["optimize", "capitalize_words", "--target", "fake:upper", "--train-limit", "3", "--shots", "5",
                 "--dry-run"]) == 2
    assert "--shots 5 with --train-limit 3" in capsys.readouterr().err


def test_the_baseline_searcher_searches_nothing_and_ships_the_incumbent(tmp_path):
    result = optimize("capitalize_words", target="fake:upper", searcher="baseline", train_limit=5, cache=False,
                      runs_dir=tmp_path)
    task = load_task("capitalize_words")
    assert result.status == "complete" and [c.origin for c in result.candidates] == ["human"] and result.calls > 0
    assert result.best.text in task.instructions and result.selection.incumbent_origin == "human"
    assert result.selection.verdict == "no significant improvement" and result.selection.finalists == []
    none = next(b for b in result.baselines if b.name == "no_instruction")
    assert none.test.n == result.best.test.n == len(task.test)
    assert result.selection.sizes["train"] == 5
