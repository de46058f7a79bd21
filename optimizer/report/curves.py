"""Learning curves: test accuracy against training examples, one line per searcher, for every (task, target model)
whose leaderboard rows were made at two or more training sizes (``--train-limit``; ``apo compare``).

Each point is a row's shipped prompt (the best run by dev score over the row's seeds) with its test accuracy and
bootstrap 95% interval, at the training examples its runs could use; the other seeds' test accuracies are drawn as
small dots beside it. The x axis is logarithmic (8, 32, 128 … examples). Rendered as an inline SVG for the HTML
report and as a Markdown table (searchers × sizes).
"""

from __future__ import annotations

import math
from collections.abc import Callable

from pydantic import BaseModel, ConfigDict

from optimizer.report.models import Leaderboard, LeaderboardRow
from optimizer.report.plots import PALETTE, accuracy_frame
from optimizer.report.plots import esc as _esc

__all__ = ["CurvePoint", "LearningCurve", "learning_curves", "learning_curves_markdown", "learning_curves_svg"]

class CurvePoint(BaseModel):
    """One searcher at one training size."""

    model_config = ConfigDict(frozen=True)

    searcher: str
    train_examples: int
    acc: float
    """Test accuracy of the row's shipped prompt."""
    ci: tuple[float, float] | None = None
    """Its bootstrap 95% interval."""
    seeds: list[float] = []
    """Test accuracy of every run of the row (each seed's shipped prompt)."""
    trainable_params: int = 0
    run_id: str = ""


class LearningCurve(BaseModel):
    """The points of one (task, target model), by searcher."""

    task: str
    target: str
    sizes: list[int]
    """The training sizes, ascending."""
    lines: dict[str, list[CurvePoint]]
    """Searcher → its points, by size."""


def _point(row: LeaderboardRow) -> CurvePoint | None:
    b = row.best
    if b.train_examples is None or b.test is None or b.test.acc is None:
        return None
    seeds = [r.test.acc for r in row.runs if r.test is not None and r.test.acc is not None]
    return CurvePoint(searcher=row.searcher, train_examples=b.train_examples, acc=b.test.acc, ci=b.test_ci,
                      seeds=seeds, trainable_params=b.trainable_params, run_id=b.run_id)


def learning_curves(lb: Leaderboard) -> list[LearningCurve]:
    """Every (task, target) of the board with test scores at two or more training sizes."""
    groups: dict[tuple[str, str], list[CurvePoint]] = {}
    for row in lb.rows:
        point = _point(row)
        if point is not None:
            groups.setdefault((row.task, row.target), []).append(point)
    curves = []
    for (task, target), points in groups.items():
        sizes = sorted({p.train_examples for p in points})
        if len(sizes) < 2:
            continue
        lines: dict[str, list[CurvePoint]] = {}
        for p in sorted(points, key=lambda p: (p.searcher, p.train_examples)):
            lines.setdefault(p.searcher, []).append(p)
        curves.append(LearningCurve(task=task, target=target, sizes=sizes, lines=lines))
    return curves


def _fmt(p: CurvePoint | None) -> str:
    if p is None:
        return "—"
    ci = f" [{p.ci[0]:.2f}, {p.ci[1]:.2f}]" if p.ci else ""
    spread = f" ({len(p.seeds)} seeds {min(p.seeds):.2f}–{max(p.seeds):.2f})" if len(p.seeds) > 1 else ""
    return f"{p.acc:.2f}{ci}{spread}"


def learning_curves_markdown(lb: Leaderboard, escape: Callable[[str], str] = str) -> list[str]:
    """Markdown lines: one table per learning curve, searchers × training sizes (empty when there is none); names
    from runs pass through ``escape``."""
    out: list[str] = []
    for c in learning_curves(lb):
        out += ["", f"Learning curve of {escape(c.task)} on {escape(c.target)}: test accuracy [bootstrap 95% "
                    "interval] of each "
                    "searcher's shipped prompt by training examples", "",
                "| searcher | " + " | ".join(str(n) for n in c.sizes) + " |", "|---" * (len(c.sizes) + 1) + "|"]
        for searcher, points in c.lines.items():
            at = {p.train_examples: p for p in points}
            out.append(f"| {escape(searcher)} | " + " | ".join(_fmt(at.get(n)) for n in c.sizes) + " |")
    return out


def _curve_svg(c: LearningCurve, index: int) -> str:
    w, h, left, right, top, bottom = 560, 300, 48, 16, 14, 40
    lo, hi = math.log(c.sizes[0]), math.log(c.sizes[-1])

    def x(n: int) -> float:
        return left + (w - left - right) * (math.log(n) - lo) / ((hi - lo) or 1.0)

    def y(v: float) -> float:
        return top + (h - top - bottom) * (1 - v)

    parts = accuracy_frame(f'class="plot curve" id="curve-{index}"', (w, h), (left, top, right, bottom),
                           f"test accuracy against training examples, {c.task} on {c.target}", y)
    for n in c.sizes:
        parts.append(f'<text x="{x(n):.1f}" y="{h - bottom + 14}" text-anchor="middle">{n}</text>')
    parts.append(f'<text x="{(left + w - right) / 2}" y="{h - 6}" text-anchor="middle">training examples (log '
                 'scale)</text>')
    for k, (searcher, points) in enumerate(c.lines.items()):
        color, dx = PALETTE[k % len(PALETTE)], (k - (len(c.lines) - 1) / 2) * 3.0  # side by side, not hidden
        xy = " ".join(f"{x(p.train_examples) + dx:.1f},{y(p.acc):.1f}" for p in points)
        parts.append(f'<polyline class="series" fill="none" stroke="{color}" stroke-width="2" points="{xy}">'
                     f'<title>{_esc(searcher)}</title></polyline>')
        for p in points:
            px = x(p.train_examples) + dx
            if p.ci:
                parts.append(f'<line class="ci" x1="{px:.1f}" x2="{px:.1f}" y1="{y(p.ci[0]):.1f}" '
                             f'y2="{y(p.ci[1]):.1f}" stroke="{color}" stroke-width="1.5"/>')
            for acc in p.seeds if len(p.seeds) > 1 else []:
                parts.append(f'<circle class="seed" cx="{px + 4:.1f}" cy="{y(acc):.1f}" r="1.8" fill="{color}" '
                             'fill-opacity="0.5"/>')
            parts.append(f'<circle class="point" cx="{px:.1f}" cy="{y(p.acc):.1f}" r="3.5" fill="{color}"><title>'
                         f'{_esc(searcher)}, {p.train_examples} training examples: {_esc(_fmt(p))} '
                         f'({_esc(p.run_id)})</title></circle>')
    parts.append("</svg>")
    swatch = '<svg width="14" height="8"><rect width="14" height="4" y="2" fill="{}"/></svg>'

    def params(points: list[CurvePoint]) -> str:
        n = max(p.trainable_params for p in points)
        return f" ({n:,} trained parameters)" if n else ""

    legend = "".join(f"<li>{swatch.format(PALETTE[k % len(PALETTE)])} {_esc(s)}{params(pts)}</li>"
                     for k, (s, pts) in enumerate(c.lines.items()))
    return (f"<figure><figcaption>Learning curve of {_esc(c.task)} on {_esc(c.target)}: test accuracy of each "
            "searcher's shipped prompt (bar: bootstrap 95% interval; small dots: the other seeds) against the "
            f'training examples its runs could use</figcaption>{"".join(parts)}<ul class="legend">{legend}</ul>'
            "</figure>")


def learning_curves_svg(lb: Leaderboard) -> str:
    """The HTML section of the board's learning curves ("" when no (task, target) has two training sizes)."""
    curves = learning_curves(lb)
    if not curves:
        return ""
    return "<h2>Learning curves</h2>" + "".join(_curve_svg(c, i + 1) for i, c in enumerate(curves))
