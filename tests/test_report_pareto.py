"""The accuracy × prompt-tokens Pareto front in the leaderboard, from real runs on the fake model: one point per
candidate raced on the full dev set, the front highlighted and joined by a step line, the shipped prompt and the
incumbent marked, every text escaped; the shipped prompt's length in every format; old runs unchanged."""

from __future__ import annotations

import html
import json
import re
import shutil
from pathlib import Path

import pytest
from test_ape import reversal_task
from test_selection import LONG, verbose_model

from optimizer import build_leaderboard, optimize
from optimizer.api import leaderboard_text
from optimizer.models.providers.fake import FakeModel, register_fake
from optimizer.report.build import RunSummary
from optimizer.report.html import render_html
from optimizer.report.plots import pareto_points, pareto_svg
from optimizer.report.text import render_markdown
from optimizer.types import Candidate, RunResult, Score

OLD_RUNS = Path(__file__).parent / "fixtures" / "runs_v1"
HOSTILE_LONG = LONG[:-1] + ' <script>alert("pwned")</script> & <b>"bold"</b>.'
"""The proposer's always-right long instruction, with markup in it: a model's text, escaped wherever it appears."""


def hostile_verbose_model() -> FakeModel:
    """:func:`test_selection.verbose_model`, whose long instruction carries markup."""
    model = verbose_model()
    return FakeModel("fake:hostile-verbose", proposals=[HOSTILE_LONG, *model.proposals[1:]], answer=model.answer)


@pytest.fixture
def runs(tmp_path) -> dict[str, RunResult]:
    """Two rows (keyed by task name): --prefer shorter with a hostile long prompt, and the plain accuracy choice."""
    register_fake("verbose", verbose_model)
    register_fake("hostile-verbose", hostile_verbose_model)
    root = tmp_path / "runs"
    return {
        "shorter": optimize(reversal_task().model_copy(update={"name": "shorter"}), target="fake:hostile-verbose",
                            seed=3, searcher="ape", candidates=10, rounds=0, prefer="shorter", runs_dir=root),
        "plain": optimize(reversal_task().model_copy(update={"name": "plain"}), target="fake:verbose", seed=3,
                          searcher="ape", candidates=10, rounds=0, runs_dir=root),
    }


def _root(runs: dict[str, RunResult]) -> Path:
    return Path(runs["plain"].run_dir).parent


def _pareto_svgs(page: str) -> dict[int, str]:
    """Each row's Pareto plot, by row number (the plot holds no nested svg: its first </svg> ends it)."""
    out = {}
    for m in re.finditer(r'<svg class="plot pareto" id="pareto-(\d+)"', page):
        out[int(m.group(1))] = page[m.start():page.index("</svg>", m.start()) + len("</svg>")]
    return out


def _raced(result: RunResult) -> list[Candidate]:
    return [c for c in result.candidates if c.dev.n >= result.selection.sizes["dev"]]


def test_rows_carry_the_front_and_the_shipped_prompts_length(runs):
    rows = {row.task: row.best for row in build_leaderboard(_root(runs)).rows}
    for task, result in runs.items():
        b = rows[task]
        assert b.pareto == result.pareto and len(b.pareto) >= 2  # a real front: a short prompt and a long one
        assert b.prompt_tokens == result.best.prompt_tokens and b.tokens_per_example == result.best.tokens_per_example
        assert b.tokens_per_example > b.prompt_tokens > 0
        assert [c.id for c in pareto_points(b)] == [c.id for c in _raced(result)]
    # the JSON format holds the same
    data = json.loads(leaderboard_text(build_leaderboard(_root(runs)), "json"))
    shorter = next(r["best"] for r in data["rows"] if r["task"] == "shorter")
    best = runs["shorter"].best
    assert shorter["pareto"] == runs["shorter"].pareto and shorter["prompt_tokens"] == best.prompt_tokens
    assert shorter["tokens_per_example"] == best.tokens_per_example


def test_html_plots_every_raced_candidate_and_highlights_the_front(runs):
    board = build_leaderboard(_root(runs))
    page = render_html(board)
    svgs = _pareto_svgs(page)
    assert sorted(svgs) == [1, 2]  # one plot per row
    for i, row in enumerate(board.rows, 1):
        result, svg = runs[row.task], svgs[i]
        raced = _raced(result)
        points = re.findall(r'<circle class="pt( front)?" data-id="([^"]+)"', svg)
        assert sorted(cid for _, cid in points) == sorted(c.id for c in raced)  # one point per raced candidate
        assert {cid for front, cid in points if front} == set(result.pareto)
        # the step line joins the front, shortest first: x never decreases, accuracy never drops
        line = re.search(r'<polyline class="front-line"[^>]* points="([^"]+)"', svg).group(1)
        xy = [tuple(map(float, p.split(","))) for p in line.split()]
        assert all(a[0] <= b[0] and a[1] >= b[1] for a, b in zip(xy, xy[1:]))
        assert len(xy) == 2 * len(result.pareto)  # a corner between each two, then on to the right edge
        # the shipped prompt and the incumbent are marked, with their ids in the hover text
        assert svg.count('<path class="shipped"') == 1 and f"<title>shipped: {result.best.candidate}" in svg
        assert svg.count('<circle class="incumbent"') == 1
        assert f"<title>incumbent: {result.selection.incumbent}" in svg
        assert 'role="img" aria-label="dev accuracy against prompt tokens of' in svg
        # the shipped prompt's length in the row's details
        best = result.best
        assert (f"Length: <b>{best.prompt_tokens}</b> prompt tokens" in page
                and f"<b>{best.tokens_per_example:.1f}</b> tokens/example" in page)


def test_html_escapes_the_models_text_in_the_plot(runs):
    page = render_html(build_leaderboard(_root(runs)))
    svg = _pareto_svgs(page)[next(i for i, row in enumerate(build_leaderboard(_root(runs)).rows, 1)
                                  if row.task == "shorter")]
    long_id = next(c.id for c in runs["shorter"].candidates if c.text == HOSTILE_LONG)
    assert long_id in runs["shorter"].pareto  # the longest prompt is the most accurate: on the front
    assert html.escape(HOSTILE_LONG, quote=True) in svg and "<b>bold</b>" not in page
    assert "<script>alert" not in page and page.count("<script") == 1


def test_markdown_and_terminal_evidence_give_the_length_and_the_front(runs):
    md = render_markdown(build_leaderboard(_root(runs)))
    result = runs["plain"]
    best = result.best
    assert f"Shipped prompt: {best.prompt_tokens} prompt tokens, {best.tokens_per_example:.1f} tokens/example" in md
    by_id = {c.id: c for c in result.candidates}
    first = by_id[result.pareto[0]]
    assert f"Pareto front (dev accuracy × prompt tokens, shortest first): {first.id} dev {first.dev.acc:.2f} at " \
           f"{first.prompt_tokens} tokens;" in md
    assert "<script>" not in md


def test_old_runs_have_no_pareto_plot_and_render_as_before(runs):
    old = build_leaderboard(OLD_RUNS)
    assert all(r.pareto is None and r.prompt_tokens is None for row in old.rows for r in row.runs)
    page = render_html(old)
    assert "pareto" not in page and "Length:" not in page and "tokens/example" not in page
    assert "Pareto" not in render_markdown(old)
    # next to new runs: a plot for the new rows only
    root = _root(runs)
    for run in OLD_RUNS.iterdir():
        shutil.copytree(run, root / run.name)
    mixed = build_leaderboard(root)
    svgs = _pareto_svgs(render_html(mixed))
    assert sorted(svgs) == sorted(i for i, row in enumerate(mixed.rows, 1) if row.task in runs)


def test_a_front_without_fully_raced_candidates_is_a_note():
    summary = RunSummary(run_id="r", run_dir="r", task="t", searcher="ape", target="fake:x", proposer="fake:x", seed=0,
                         scoring="accuracy", configuration="-", status="partial", pareto=[],
                         candidates=[Candidate(id="c000", text="x", origin="forward", dev=Score(acc=1.0, n=3))])
    assert "no Pareto front" in pareto_svg(summary, 1) and "<svg" not in pareto_svg(summary, 1)
    assert pareto_svg(summary.model_copy(update={"pareto": None}), 1) == ""
