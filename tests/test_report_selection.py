"""The leaderboard's verdict columns from real runs on the fake model: improved, no significant improvement, a
demos-searched prompt, a user's initial prompt and an untested run, in every format; old runs unchanged."""

from __future__ import annotations

import html
import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from rich.console import Console
from test_ape import PLANTED, WORDS, planted_model, reversal_task
from test_demos import picky_model
from test_selection import coin_model

from optimizer import build_leaderboard, optimize
from optimizer.api import leaderboard_text
from optimizer.models.providers.fake import register_fake
from optimizer.report.html import render_html
from optimizer.report.stats import paired_bootstrap_ci
from optimizer.report.text import (
    COLUMNS,
    SELECTION_COLUMNS,
    columns,
    fmt_ci,
    md_escape,
    render_markdown,
    render_table,
)
from optimizer.tasks.task import Task
from optimizer.types import Example, RunResult

REPO = Path(__file__).resolve().parents[1]
OLD_RUNS = Path(__file__).parent / "fixtures" / "runs_v1"
HOSTILE = 'Repeat the word. <script>alert("pwned")</script>'
HOSTILE_ID = '"><u>'
"""Ends every training example id of the demos task: ids come from the user's data, so they are escaped too."""


def _coin_task() -> Task:
    words = [f"{w}{i}" for i, w in enumerate(WORDS * 3)]
    ex = [Example(input=w, output=w[::-1], id=str(i)) for i, w in enumerate(words)]
    return Task(name="coin", train=ex[:40], dev=ex[40:120], test=ex[120:], metric="exact_match",
                instructions=["Reverse the word."], shots=0)


def _picky_task() -> Task:
    ex = [Example(input=w, output=w[::-1], id=f"w{i}{HOSTILE_ID}") for i, w in enumerate(WORDS)]
    return Task(name="picky", train=ex[:20], dev=ex[20:44], test=ex[44:], metric="exact_match",
                instructions=["Reverse the word."], shots=2)


@pytest.fixture
def runs(tmp_path) -> dict[str, RunResult]:
    """One run per verdict and kind of incumbent, each its own leaderboard row (keyed by task name)."""
    register_fake("planted", planted_model)
    register_fake("coin", coin_model)
    register_fake("picky", picky_model)
    root = tmp_path / "runs"
    return {
        "initial": optimize(reversal_task().model_copy(update={"name": "initial"}), target="fake:planted", seed=3,
                            searcher="ape", candidates=10, rounds=0, initial_prompt=HOSTILE, runs_dir=root),
        "coin": optimize(_coin_task(), target="fake:coin", seed=0, searcher="ape", candidates=24, rounds=0,
                         race_min_examples=10,
                         tiebreak_logprob=False, runs_dir=root),
        "picky": optimize(_picky_task(), target="fake:picky", searcher="demos", seed=0, runs_dir=root),
        "untested": optimize(reversal_task().model_copy(update={"name": "untested"}), target="fake:planted", seed=3,
                             searcher="ape", candidates=10, rounds=0, confirm_limit=0, runs_dir=root),
    }


def _rows(root: Path) -> dict:
    return {row.task: row for row in build_leaderboard(root).rows}


def _root(runs: dict[str, RunResult]) -> Path:
    return Path(runs["coin"].run_dir).parent


def test_rows_carry_the_verdict_the_comparison_with_the_incumbent_and_the_demonstrations(runs):
    assert {k: r.selection.verdict for k, r in runs.items()} == {
        "initial": "improved", "coin": "no significant improvement", "picky": "improved", "untested": "not tested"}
    rows = _rows(_root(runs))
    for task, result in runs.items():
        b = rows[task].best
        assert b.run_id == result.run_id and b.best_text == result.best.text  # the shipped prompt ranks the run
        assert b.verdict == result.selection.verdict and b.selection == result.selection
        inc = result.incumbent_prompt()
        if inc is None:
            assert b.vs_incumbent is None
            continue
        assert b.vs_incumbent.text == inc.text and b.vs_incumbent.n == len(inc.test_acc)
        assert b.vs_incumbent.diff == pytest.approx(result.best.test.acc - inc.test.acc)
        assert b.vs_incumbent.ci == tuple(round(v, 4) for v in paired_bootstrap_ci(result.best.test_acc, inc.test_acc))
    # the user's prompt lost: it is reported as the incumbent row, and the planted instruction beat it on test
    initial = rows["initial"].best
    assert initial.selection.incumbent_origin == "initial"
    assert initial.vs_incumbent.baseline == "incumbent" and initial.vs_incumbent.text == HOSTILE
    assert initial.best_text == PLANTED and initial.vs_incumbent.ci == (1.0, 1.0)
    # nothing beat the best human instruction: it ships, so the comparison is with itself
    coin = rows["coin"].best
    assert coin.vs_incumbent.baseline == "best" and coin.vs_incumbent.diff == 0.0 and coin.vs_incumbent.ci == (0.0, 0.0)
    assert len(coin.selection.finalists) == 3 and not any(t.significant for t in coin.selection.finalists)
    # the demos searcher shipped its own demonstrations; the others show the run's fixed ones
    picky = rows["picky"].best
    assert picky.demos == runs["picky"].best.demos and picky.demos_k == len(picky.demos) >= 2
    assert rows["initial"].best.demos is None and rows["initial"].best.demos_k == 2
    assert coin.demos is None and coin.demos_k == 0
    # the lineage of the shipped demonstrations: from the incumbent to the set, with its ids
    assert [s.demos for s in rows["picky"].lineage][-1] == picky.demos


def test_markdown_has_the_verdict_columns_and_the_evidence(runs):
    board = build_leaderboard(_root(runs))
    md = render_markdown(board)
    assert "| " + " | ".join(columns(board)) + " |" in md and "| verdict | Δ vs incumbent [95% CI] | incumbent |" in md
    lines = {row.task: next(line for line in md.splitlines() if line.startswith(f"| {row.task} |"))
             for row in board.rows}
    rows = {row.task: row for row in board.rows}
    for task, line in lines.items():
        b = rows[task].best
        vs = b.vs_incumbent
        assert f"| {b.verdict} | {fmt_ci(vs.diff, vs.ci, sign=True) if vs else '—'} |" in line
    assert "| initial prompt |" in lines["initial"] and "| best human |" in lines["coin"]
    assert "| run's 2 |" in lines["initial"] and "| 0 |" in lines["coin"]
    ids = rows["picky"].best.demos
    assert f"| {len(ids)}: {md_escape(', '.join(ids))} |" in lines["picky"]
    assert "<u>" not in md  # example ids are escaped like every other text
    evidence = md.split("Verdicts and their evidence:")[1]
    sel = rows["picky"].best.selection
    win = next(t for t in sel.finalists if t.candidate == sel.shipped)
    assert f"{win.candidate} {win.diff:+.3f}, p {win.p_value:.3g}, adjusted {win.p_adjusted:.3g}" in evidence
    assert "Examples: dev 12 (racing) / confirm 12 / test 16." in evidence
    assert "no finalist beat the incumbent (the best human instruction, id human)" in evidence
    assert "Confirmation is off" in evidence


def test_terminal_table_has_the_verdicts_and_every_figure(runs):
    buf = io.StringIO()
    render_table(build_leaderboard(_root(runs)), Console(file=buf, width=260, color_system=None))
    text = buf.getvalue()
    for words in ("improved vs initial prompt", "no significant improvement vs best human", "not tested",
                  "improved vs best human", "Δ vs incumbent", "run's 2"):
        assert words in text, words
    picky = runs["picky"]
    assert "demonstrations of the shipped prompt, in order: " + ", ".join(picky.best.demos) in text
    assert "Examples: dev 40 (racing) / confirm 40 / test 60." in text
    # a 150-column terminal wraps cells instead of cutting the last column off
    buf = io.StringIO()
    render_table(build_leaderboard(_root(runs)), Console(file=buf, width=150, color_system=None))
    assert buf.getvalue().count("complete") == 4 and "status" in buf.getvalue()


def test_json_is_the_leaderboard_data_with_the_selection(runs):
    board = build_leaderboard(_root(runs))
    data = json.loads(leaderboard_text(board, "json"))
    rows = {row["task"]: row["best"] for row in data["rows"]}
    picky = runs["picky"]
    assert rows["picky"]["verdict"] == "improved" and rows["picky"]["demos"] == list(picky.best.demos)
    assert rows["picky"]["selection"]["sizes"] == {"train": 20, "dev": 12, "confirm": 12, "test": 16}
    assert rows["picky"]["selection"]["finalists"] == [t.model_dump() for t in picky.selection.finalists]
    assert rows["coin"]["vs_incumbent"]["ci"] == [0.0, 0.0] and rows["coin"]["selection"]["incumbent_origin"] == "human"
    # confirmation off: the best on dev ships untested, and the test split still compares it with the incumbent
    untested = rows["untested"]
    assert untested["verdict"] == "not tested" and untested["vs_incumbent"] == untested["vs_human"]


def test_html_shows_verdicts_evidence_and_demonstrations_escaped(runs):
    board = build_leaderboard(_root(runs))
    page = render_html(board)
    for col in SELECTION_COLUMNS:
        assert f">{html.escape(col)}</th>" in page
    assert '<span class="v v-improved">improved</span>' in page
    assert '<span class="v v-no-significant-improvement">no significant improvement</span>' in page
    assert '<span class="v v-not-tested">not tested</span>' in page
    rows = {row.task: row.best for row in board.rows}
    coin = rows["coin"].selection
    for t in coin.finalists:  # the confirmation table: every finalist's p-values
        assert f'<td class="num">{t.p_value:.3g}</td><td class="num">{t.p_adjusted:.3g}</td><td>no</td>' in page
    assert "dev 40 / confirm 40 / test 60" in page and "40 dev (racing), 40 confirm" in page
    assert "difference +0.00 [+0.00, +0.00] over 60 paired test examples" in page
    assert "lowest adjusted p" in page and "human (incumbent, ships)" in page
    # the shipped demonstrations and each lineage step's, ids escaped
    ids = [html.escape(i, quote=True) for i in rows["picky"].demos]
    assert f'It shows {len(ids)} demonstrations (<span class="mono">{", ".join(ids)}</span>), in this order.' in page
    assert "the run's demonstrations (2)" in page and f"{len(ids)} demos: {ids[0]}" in page
    assert '<text class="demos"' in page and "<u>" not in page
    # the user's prompt is model-independent text: escaped wherever the incumbent appears
    assert "<script>alert" not in page and page.count("<script") == 1
    assert html.escape(HOSTILE, quote=True) in page


def test_old_runs_have_no_verdict_columns_and_show_dashes_next_to_new_ones(runs, tmp_path):
    old = build_leaderboard(OLD_RUNS)
    assert columns(old) == COLUMNS and all(row.best.verdict is None for row in old.rows)
    md = render_markdown(old)
    assert "verdict" not in md and "incumbent" not in md and "Verdicts" not in md
    assert "verdict" not in render_html(old) and "It shows" not in render_html(old)
    root = _root(runs)
    for run in OLD_RUNS.iterdir():
        shutil.copytree(run, root / run.name)
    mixed = build_leaderboard(root)
    assert columns(mixed) != COLUMNS and not mixed.skipped
    md = render_markdown(mixed)
    line = next(line for line in md.splitlines() if "| " + md_escape("ape-fake-capitalize_words,") in line)
    assert "| — | — | — | run's |" in line  # no verdict, Δ vs incumbent or incumbent; the run's demonstrations


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "optimizer", *args], capture_output=True, text=True, cwd=REPO,
                          env={**os.environ, "COLUMNS": "200"}, timeout=120)


def test_runs_show_reads_the_demonstrations_and_the_shipped_prompts_own_test_scores(runs):
    picky = runs["picky"]
    shown = _cli("runs", "show", picky.run_dir)
    assert shown.returncode == 0, shown.stderr
    out = shown.stdout
    assert "verdict: improved" in out
    lineage = out.split("lineage of the best prompt")[1]
    assert f"{picky.best.candidate} demos (round" in lineage
    assert f"with {len(picky.best.demos)} demonstrations ({', '.join(picky.best.demos)})" in lineage
    # the wrong answers are the shipped prompt's (its own demonstrations), not those of the same instruction
    # with the run's demonstrations
    wrong = sum(1 for acc in picky.best.test_acc if acc < 1)
    assert f"test examples the best prompt gets wrong: {wrong} of {len(picky.best.test_acc)}" in out
