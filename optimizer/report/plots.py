"""The leaderboard's inline SVG plots: dev accuracy against model calls, every candidate's dev accuracy, and the
lineage tree of each row's shipped prompt.

Every text that comes from a run (prompts, candidate and run ids, task names, model ids) is escaped with
:func:`esc` before it reaches the page.
"""

from __future__ import annotations

import html
import math

from optimizer.report.build import Leaderboard, LeaderboardRow

__all__ = ["PALETTE", "distribution_svg", "esc", "lineage_svg", "trajectory_svg"]

PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf")


def esc(value: object) -> str:
    """``value`` as HTML text, safe in element content and in quoted attributes."""
    return html.escape(str(value), quote=True)


_e = esc

def _axis_ticks(hi: float) -> list[float]:
    if hi <= 0:
        return [0.0]
    step = 10 ** math.floor(math.log10(hi))
    for mult in (1, 2, 5, 10):
        if hi / (step * mult) <= 5:
            step *= mult
            break
    return [i * step for i in range(int(hi / step) + 1)]


def trajectory_svg(row: LeaderboardRow, index: int) -> str:
    runs = [r for r in row.runs if r.trajectory]
    w, h, left, bottom, top, right = 420, 230, 44, 34, 14, 12
    if not runs:
        return '<p class="note">No racing rungs recorded: no dev-score trajectory to plot.</p>'
    max_calls = max(max(c for c, _ in r.trajectory) for r in runs) or 1
    max_calls = max(max_calls, max((r.calls or 0) for r in runs))

    def x(c):
        return left + (w - left - right) * c / max_calls

    def y(v):
        return top + (h - top - bottom) * (1 - v)

    parts = [f'<svg class="plot trajectory" id="trajectory-{index}" width="{w}" height="{h}" '
             f'viewBox="0 0 {w} {h}" role="img" aria-label="best dev accuracy against model calls">',
             f'<rect x="{left}" y="{top}" width="{w - left - right}" height="{h - top - bottom}" fill="#fafafa" '
             'stroke="#999"/>']
    for t in (0.0, 0.25, 0.5, 0.75, 1.0):
        parts.append(f'<line x1="{left}" x2="{w - right}" y1="{y(t):.1f}" y2="{y(t):.1f}" stroke="#e4e4e4"/>'
                     f'<text x="{left - 4}" y="{y(t) + 4:.1f}" text-anchor="end">{t:.2f}</text>')
    for t in _axis_ticks(max_calls):
        parts.append(f'<text x="{x(t):.1f}" y="{h - bottom + 14}" text-anchor="middle">{t:g}</text>')
    parts.append(f'<text x="{(left + w - right) / 2}" y="{h - 4}" text-anchor="middle">model calls</text>'
                 f'<text x="12" y="{(top + h - bottom) / 2}" text-anchor="middle" '
                 f'transform="rotate(-90 12 {(top + h - bottom) / 2})">best dev accuracy</text>')
    for k, r in enumerate(runs):
        color = PALETTE[k % len(PALETTE)]
        pts, prev = [], None
        for calls, best in r.trajectory:
            if prev is not None:
                pts.append(f"{x(calls):.1f},{y(prev):.1f}")
            pts.append(f"{x(calls):.1f},{y(best):.1f}")
            prev = best
        if r.calls is not None and prev is not None and r.calls > r.trajectory[-1][0]:
            pts.append(f"{x(r.calls):.1f},{y(prev):.1f}")
        parts.append(f'<polyline class="series" fill="none" stroke="{color}" stroke-width="2" points="{" ".join(pts)}">'
                     f'<title>{_e(r.run_id)}</title></polyline>')
        for calls, best in r.trajectory:
            parts.append(f'<circle cx="{x(calls):.1f}" cy="{y(best):.1f}" r="2.5" fill="{color}">'
                         f'<title>{_e(r.run_id)}: {best:.3f} after {calls} calls</title></circle>')
    parts.append("</svg>")
    swatch = '<svg width="14" height="8"><rect width="14" height="4" y="2" fill="{}"/></svg>'
    legend = "".join(f'<li>{swatch.format(PALETTE[k % len(PALETTE)])} '
                     f'<span class="mono">{_e(r.run_id)}</span> seed {r.seed}, proposer {_e(r.proposer)}, '
                     f'{_e(r.status)}</li>' for k, r in enumerate(runs))
    return (f'<figure><figcaption>Best dev accuracy (full dev set) against model calls, per run</figcaption>'
            f'{"".join(parts)}<ul class="legend">{legend}</ul></figure>')


def distribution_svg(lb: Leaderboard) -> str:
    label_w, w, line_h, top = 340, 860, 24, 12
    h = top + line_h * len(lb.rows) + 30

    def x(v):
        return label_w + (w - label_w - 16) * v

    parts = [f'<svg class="plot distribution" id="distribution" width="{w}" height="{h}" viewBox="0 0 {w} {h}" '
             'role="img" aria-label="dev accuracy of every candidate, per row">']
    for t in (0.0, 0.25, 0.5, 0.75, 1.0):
        parts.append(f'<line x1="{x(t):.1f}" x2="{x(t):.1f}" y1="{top - 6}" y2="{h - 24}" stroke="#e4e4e4"/>'
                     f'<text x="{x(t):.1f}" y="{h - 10}" text-anchor="middle">{t:.2f}</text>')
    for i, row in enumerate(lb.rows):
        cy = top + line_h * i + line_h / 2
        parts.append(f'<text x="{label_w - 8}" y="{cy + 4:.1f}" text-anchor="end">#{i + 1} {_e(row.task)} · '
                     f'{_e(row.searcher)} · {_e(row.target)}</text>'
                     f'<line x1="{x(0):.1f}" x2="{x(1):.1f}" y1="{cy:.1f}" y2="{cy:.1f}" stroke="#eee"/>')
        for r in row.runs:
            full = max((c.dev.n for c in r.candidates), default=0)
            for j, c in enumerate(r.candidates):
                if c.dev.acc is None:
                    continue
                jitter = ((j * 7) % 9 - 4) * 1.6
                fill = "#1f77b4" if c.dev.n == full else "none"
                parts.append(f'<circle class="cand" cx="{x(c.dev.acc):.1f}" cy="{cy + jitter:.1f}" r="3.2" '
                             f'fill="{fill}" stroke="#1f77b4" fill-opacity="0.55"><title>{_e(c.id)} '
                             f'({_e(r.run_id)}): {c.dev.acc:.3f} on {c.dev.n} dev examples — {_e(c.text)}'
                             '</title></circle>')
        b = row.best
        if b.dev and b.dev.acc is not None:
            bx = x(b.dev.acc)
            parts.append(f'<path class="winner" d="M{bx:.1f},{cy - 7:.1f} l6,7 l-6,7 l-6,-7 z" fill="#d62728">'
                         f'<title>best: {b.dev.acc:.3f} — {_e(b.best_text or "")}</title></path>')
    parts.append("</svg>")
    return ("<figure><figcaption>Dev accuracy of every candidate of every run (filled: scored on the full dev set; "
            "hollow: dropped earlier by racing; red diamond: the row's best prompt; hover a point for its text)"
            f'</figcaption>{"".join(parts)}</figure>')


def _demos_line(demos: tuple[str, ...] | None) -> tuple[str, str]:
    """A node's demonstrations: for its hover text (every id) and its face (shortened)."""
    if demos is None:
        return " — the run's demonstrations", "run's demonstrations"
    full = f"{len(demos)} demos: {', '.join(demos)}" if demos else "no demonstrations"
    return f" — {full}", full if len(full) <= 34 else full[:33] + "…"


def lineage_svg(row: LeaderboardRow, index: int) -> str:
    if not row.lineage:
        return '<p class="note">The best prompt is not among the searched candidates: no lineage.</p>'
    candidates = row.best.candidates
    by_id = {c.id: c for c in candidates}
    root = row.lineage[0].id
    children: dict[str, list[str]] = {}
    for c in candidates:
        if c.parent is not None:
            children.setdefault(c.parent, []).append(c.id)
    levels: list[list[str]] = [[root]]
    while len(levels) < 8:
        nxt = [k for p in levels[-1] for k in sorted(children.get(p, []))]
        if not nxt:
            break
        levels.append(nxt)
    show_demos = row.best.selection is not None or any(c.demos is not None for c in candidates)
    box_w, box_h, gap_x, gap_y = (200, 43, 36, 10) if show_demos else (175, 30, 36, 10)
    rows = max(len(level) for level in levels)
    w = len(levels) * (box_w + gap_x) + 10
    h = rows * (box_h + gap_y) + 4
    pos = {cid: (10 + d * (box_w + gap_x), 2 + k * (box_h + gap_y))
           for d, level in enumerate(levels) for k, cid in enumerate(level)}
    on_path = {s.id for s in row.lineage}
    parts = [f'<svg class="plot lineage" id="lineage-{index}" width="{w}" height="{h}" viewBox="0 0 {w} {h}" '
             'role="img" aria-label="lineage tree of the best prompt">']
    for cid, (px, py) in pos.items():
        parent = by_id[cid].parent
        if parent in pos:
            qx, qy = pos[parent]
            color = "#d62728" if cid in on_path and parent in on_path else "#bbb"
            parts.append(f'<line x1="{qx + box_w}" y1="{qy + box_h / 2}" x2="{px}" y2="{py + box_h / 2}" '
                         f'stroke="{color}" stroke-width="1.5"/>')
    for cid, (px, py) in pos.items():
        c = by_id[cid]
        stroke = "#d62728" if cid in on_path else "#999"
        acc = "—" if c.dev.acc is None else f"{c.dev.acc:.2f}"
        short = c.text if len(c.text) <= 28 else c.text[:27] + "…"
        demos = _demos_line(c.demos) if show_demos else ("", "")
        parts.append(f'<g class="node"><title>{_e(c.id)} ({_e(c.origin)}, round {c.round}): dev {acc} on '
                     f'{c.dev.n} — {_e(c.text)}{_e(demos[0])}</title><rect x="{px}" y="{py}" width="{box_w}" '
                     f'height="{box_h}" rx="4" fill="#fff" stroke="{stroke}" '
                     f'stroke-width="{2 if cid in on_path else 1}"/>'
                     f'<text x="{px + 5}" y="{py + 12}">{_e(c.id)} · {_e(c.origin)} · {acc} ({c.dev.n})</text>'
                     f'<text x="{px + 5}" y="{py + 25}">{_e(short)}</text>'
                     + (f'<text class="demos" x="{px + 5}" y="{py + 38}">{_e(demos[1])}</text>' if show_demos else "")
                     + '</g>')
    parts.append("</svg>")
    return ('<figure><figcaption>Lineage of the best prompt: demonstrations → proposal → variations (red: the '
            f'path to the winner; hover a box for its full text{" and demonstrations" if show_demos else ""})'
            f'</figcaption>{"".join(parts)}</figure>')
