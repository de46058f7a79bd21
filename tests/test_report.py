"""Leaderboard reports: data, intervals, seeds, incomplete runs, filters, terminal and Markdown snapshots.

Snapshots live in tests/snapshots/; after an intended change of the output, regenerate them with
``APO_UPDATE_SNAPSHOTS=1 python -m pytest tests/test_report.py`` and review the diff.
"""

from __future__ import annotations

import io
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

import pytest
from report_runs import seeded, snapshot_runs, write_run
from rich.console import Console

from optimizer import build_leaderboard
from optimizer.errors import UsageError
from optimizer.report.build import lineage, summarize_run, word_diff
from optimizer.report.stats import bootstrap_ci, paired_bootstrap_ci
from optimizer.report.text import md_escape, render_markdown, render_table
from optimizer.run.scoring import prompt_hash as instruction_hash
from optimizer.types import Candidate, Score

REPO = Path(__file__).resolve().parents[1]
SNAPSHOTS = Path(__file__).parent / "snapshots"


def check_snapshot(name: str, text: str) -> None:
    path = SNAPSHOTS / name
    if os.environ.get("APO_UPDATE_SNAPSHOTS"):
        path.parent.mkdir(exist_ok=True)
        path.write_text(text, encoding="utf-8")
    assert path.exists(), f"no snapshot {path}; create it with APO_UPDATE_SNAPSHOTS=1"
    assert text == path.read_text(encoding="utf-8"), f"output differs from {path} (APO_UPDATE_SNAPSHOTS=1 rewrites it)"


@pytest.fixture
def runs(tmp_path) -> Path:
    return snapshot_runs(tmp_path / "runs")


def test_terminal_table_snapshot(runs, monkeypatch):
    monkeypatch.chdir(runs.parent)  # a relative source path, the same on every machine
    buf = io.StringIO()
    render_table(build_leaderboard("runs"), Console(file=buf, width=150, color_system=None, legacy_windows=False))
    check_snapshot("leaderboard_table.txt", buf.getvalue())


def test_a_narrow_terminal_leaves_out_columns_and_says_which(runs, monkeypatch):
    monkeypatch.chdir(runs.parent)
    board = build_leaderboard("runs")
    for width, dropped in ((80, True), (100, True), (200, False)):
        buf = io.StringIO()
        render_table(board, Console(file=buf, width=width, color_system=None, legacy_windows=False))
        text = buf.getvalue()
        assert max(len(line) for line in text.splitlines()) <= width
        flat = " ".join(text.split())
        assert ("Left out to fit the terminal: tokens," in flat) is dropped, width  # the first column to go
        table = text.split(" rows from ")[0]
        assert "[0.70, 1.00]" in table and "0.85" in table  # intervals whole, on their own line
        assert ("tokens" in table) is not dropped


def test_markdown_snapshot(runs, monkeypatch):
    monkeypatch.chdir(runs.parent)
    check_snapshot("leaderboard.md", render_markdown(build_leaderboard("runs")))


def test_rows_sorted_and_grouped_by_task_searcher_target(runs):
    board = build_leaderboard(runs)
    keys = [(r.task, r.searcher, r.target) for r in board.rows]
    assert keys == [("alpha", "autoprompt", "fake:b"), ("alpha", "ape", "fake:a"), ("beta", "ape", "fake:a"),
                    ("beta", "ape", "fake:b")]
    # within a task: higher test accuracy first, rows without a test score last
    assert board.rows[0].best.test.acc > board.rows[1].best.test.acc
    assert board.rows[3].best.test is None


def test_interval_and_paired_differences_are_the_bootstrap_of_the_stored_scores(runs):
    row = build_leaderboard(runs, searcher="autoprompt").rows[0]
    best, none, human = seeded(20, 17), seeded(20, 6), seeded(20, 12, 1)
    assert row.best.test_ci == tuple(round(v, 4) for v in bootstrap_ci(best))
    assert row.best.vs_none.diff == pytest.approx(17 / 20 - 6 / 20)
    assert row.best.vs_none.ci == tuple(round(v, 4) for v in paired_bootstrap_ci(best, none))
    assert row.best.vs_human.ci == tuple(round(v, 4) for v in paired_bootstrap_ci(best, human))
    assert row.best.vs_human.text == "Write it in capitals." and row.best.vs_human.n == 20


def test_all_correct_and_all_wrong_give_degenerate_intervals(tmp_path):
    write_run(tmp_path, "r1", task="t", best=[1.0] * 30, none=[0.0] * 30, human=[1.0] * 30)
    s = summarize_run(tmp_path / "r1")
    assert s.test_ci == (1.0, 1.0)
    assert s.vs_none.diff == 1.0 and s.vs_none.ci == (1.0, 1.0)
    assert s.vs_human.diff == 0.0 and s.vs_human.ci == (0.0, 0.0)


def test_interrupted_run_ranks_its_candidates_by_its_own_scoring(tmp_path):
    run = tmp_path / "r-lp"
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"schema": 1, "config": {"task": "t", "scoring": "logprob"}}))
    events = [{"type": "candidate", "id": "c000", "text": "High accuracy.", "origin": "forward", "ih": "h0"},
              {"type": "candidate", "id": "c001", "text": "High log-probability.", "origin": "forward", "ih": "h1"}]
    for ih, acc, lp in (("h0", 0.9, -5.0), ("h1", 0.5, -1.0)):  # schema-1 score events: 10 dev examples each
        events += [{"type": "score", "split": "dev", "ih": ih, "ex": str(i), "acc": float(i < acc * 10), "lp": lp}
                   for i in range(10)]
    events.append({"type": "rung", "round": 0, "n": 10, "scores": {"c000": [0.9, -5.0], "c001": [0.5, -1.0]}})
    (run / "events.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events))
    s = summarize_run(run)
    assert s.status == "interrupted" and s.best_candidate == "c001"
    assert [c.id for c in s.candidates] == ["c001", "c000"]


def test_seeds_of_one_configuration_are_summarised(runs):
    row = build_leaderboard(runs, task="alpha", model="fake:a").rows[0]
    assert row.seeds == [0, 1, 2] and len(row.run_ids) == 3
    # the winner is the best dev score (seed 2: dev 0.8), not the best test score
    assert row.best.run_id == "r-alpha-a-s2" and row.run_ids[0] == "r-alpha-a-s2"
    accs = [16 / 20, 14 / 20, 15 / 20]
    assert row.seed_spread.n == 3
    assert row.seed_spread.mean == pytest.approx(statistics.fmean(accs))
    assert row.seed_spread.sd == pytest.approx(statistics.stdev(accs))
    assert (row.seed_spread.min, row.seed_spread.max) == (min(accs), max(accs))
    assert row.calls == 300 and row.tokens == 6000 and row.cost_usd == 0.0 and row.wall_s == 37.5


def test_incomplete_runs_are_shown_and_marked(runs):
    board = build_leaderboard(runs, task="beta")
    mixed, killed = board.rows
    assert mixed.status == "complete" and mixed.incomplete == ["r-beta-a-partial"]
    assert [r.status for r in mixed.runs] == ["complete", "partial"]
    assert mixed.runs[1].stop_reason.startswith("budget reached")
    assert killed.status == "interrupted" and killed.run_ids == ["r-beta-b-killed"]
    # what an interrupted run recorded: its last usage snapshot and its best raced candidate
    assert killed.calls == 50 and killed.tokens == 1000 and killed.wall_s == 6.0
    assert killed.best.best_candidate == "c001" and killed.best.dev.n == 10
    assert "complete (+1 partial)" in render_markdown(board) and "interrupted" in render_markdown(board)


def test_missing_figures_are_dashes_not_zeros(runs):
    row = build_leaderboard(runs, task="beta", model="fake:a").rows[0]
    assert row.cost_usd is None and row.wall_s is None  # the old run recorded neither
    md = render_markdown(build_leaderboard(runs, task="beta")).splitlines()
    line = next(text for text in md if "r-beta-a-old" in text)
    assert "| — | — |" in line


def test_filters_and_clear_errors(runs, tmp_path):
    assert {r.task for r in build_leaderboard(runs, task="alpha,beta").rows} == {"alpha", "beta"}
    assert [r.searcher for r in build_leaderboard(runs, searcher=["autoprompt"]).rows] == ["autoprompt"]
    with pytest.raises(UsageError, match="no runs match --task gamma.*tasks there: alpha, beta"):
        build_leaderboard(runs, task="gamma")
    with pytest.raises(UsageError, match="does not exist"):
        build_leaderboard(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(UsageError, match="no runs in"):
        build_leaderboard(tmp_path / "empty")


def test_unreadable_run_is_listed_not_dropped(runs):
    (runs / "r-alpha-b" / "result.json").write_text("{not json")
    board = build_leaderboard(runs)
    assert [s.path for s in board.skipped] == [str(runs / "r-alpha-b")]
    assert "Unreadable run folders" in render_markdown(board)


def test_lineage_follows_parents_and_diffs_words():
    cands = [Candidate(id="c000", text="Repeat the input.", origin="forward", dev=Score(acc=0.2, n=10)),
             Candidate(id="c003", text="Repeat the input loudly.", origin="variation", parent="c000", round=1),
             Candidate(id="c007", text="Shout the input loudly.", origin="variation", parent="c003", round=2),
             Candidate(id="c001", text="Other.", origin="forward")]
    steps = lineage(cands, "c007")
    assert [s.id for s in steps] == ["c000", "c003", "c007"]
    assert steps[0].diff == []
    assert steps[1].diff == [("same", "Repeat the"), ("del", "input."), ("add", "input loudly.")]
    assert steps[2].diff == [("del", "Repeat"), ("add", "Shout"), ("same", "the input loudly.")]
    assert lineage(cands, "nope") == []
    assert word_diff("a b", "a b") == [("same", "a b")]


def test_markdown_escapes_prompt_text():
    assert md_escape("a | b <script> *x*\nnext") == "a \\| b \\<script\\> \\*x\\* next"


def _cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "optimizer", *args], capture_output=True, text=True, cwd=REPO,
                          env={**os.environ, "COLUMNS": "160", **(env or {})}, timeout=120)


def test_cli_formats_and_exit_codes(runs, tmp_path):
    out = _cli("leaderboard", str(runs), "--format", "json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == json.loads(build_leaderboard(runs).model_dump_json())
    md = tmp_path / "board.md"
    out = _cli("leaderboard", str(runs), "--format", "md", "--out", str(md), "--task", "alpha")
    assert out.returncode == 0 and md.read_text().count("| alpha |") == 2
    table = _cli("leaderboard", "--task", "beta", env={"APO_RUNS_DIR": str(runs)})
    assert table.returncode == 0 and "interrupted" in table.stdout and "alpha" not in table.stdout
    for args, words in ((["leaderboard", str(tmp_path / "missing")], "does not exist"),
                        (["leaderboard", str(runs), "--model", "fake:zzz"], "models there: fake:a, fake:b")):
        bad = _cli(*args)
        assert bad.returncode == 2 and words in bad.stderr, bad.stderr
    helptext = _cli("leaderboard", "--help").stdout
    assert "Sort order (stable): task A→Z, then test accuracy" in helptext


def test_runs_show_prints_lineage_and_wrong_test_examples(tmp_path):
    from optimizer import load_task, optimize

    result = optimize("capitalize_words", target="fake:upper", searcher="ape", rounds=1, runs_dir=tmp_path / "runs")
    shown = _cli("runs", "show", result.run_id, env={"APO_RUNS_DIR": str(tmp_path / "runs")})
    assert shown.returncode == 0, shown.stderr
    text = shown.stdout
    assert "top candidates" in text and "lineage of the best prompt" in text
    assert f"{result.best.candidate} " in text.split("lineage of the best prompt")[1]
    wrong = [i for i, acc in enumerate(result.best.test_acc) if acc < 1]
    assert f"test examples the best prompt gets wrong: {len(wrong)} of {len(result.best.test_acc)}" in text
    first = load_task("capitalize_words").test[wrong[0]]
    assert repr(first.input) in text and f"gold {first.output!r}" in text


def test_leaderboard_imports_no_torch(runs):
    code = ("import sys\nfrom optimizer.cli.main import main\n"
            f"assert main(['leaderboard', {str(runs)!r}, '--format', 'html', '--out', {str(runs / 'x.html')!r}]) == 0\n"
            "heavy = [m for m in ('torch', 'transformers') if m in sys.modules]\nassert not heavy, heavy\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert out.returncode == 0, out.stderr


def test_runs_show_prints_model_text_literally_and_says_why_inputs_are_missing(tmp_path):
    text = "Say [/bold] [red]loud[/red] now."
    run = write_run(tmp_path / "runs", "r-markup", task="not_a_task_anywhere", best_text=text,
                    best=[1.0, 0.0], none=[0.0, 0.0], human=[0.0, 0.0])
    with open(run / "events.jsonl", "a") as fh:
        for ex, acc in (("0", 1.0), ("1", 0.0)):
            fh.write(json.dumps({"type": "score", "split": "test", "ih": instruction_hash(text), "ex": ex,
                                 "acc": acc, "out": f"answer {ex}"}) + "\n")
    shown = _cli("runs", "show", str(run))
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.count(text) >= 2  # the best prompt and its candidate row, markup left as text
    assert "test examples the best prompt gets wrong: 1 of 2" in shown.stdout
    assert "could not be loaded" in shown.stdout and "[1] 'answer 1'" in shown.stdout
