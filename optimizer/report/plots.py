"""The leaderboard's inline SVG plots: dev accuracy against model calls, every candidate's dev accuracy, the
lineage tree of each row's shipped prompt, and its run's accuracy × prompt-tokens Pareto front.

Every text that comes from a run (prompts, candidate and run ids, task names, model ids) is escaped with
:func:`esc` before it reaches the page.
"""

from __future__ import annotations

import html
import math
from collections.abc import Callable

from optimizer.report.build import Leaderboard, LeaderboardRow, RunSummary
from optimizer.tasks.nearest import nearest_k, nearest_phrase
from optimizer.types import Candidate

__all__ = ["PALETTE", "accuracy_frame", "distribution_svg", "esc", "lineage_svg", "pareto_points", "pareto_svg",
           "trajectory_svg"]

PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf")



def accuracy_frame(attrs: str, size: tuple[int, int], margins: tuple[int, int, int, int], label: str,
           y: Callable[[float], float]) -> list[str]:
    """An accuracy plot's opening: the svg element (``attrs``, an escaped aria-label), its box and the 0–1 grid."""
    (w, h), (left, top, right, bottom) = size, margins
    parts = [f'<svg {attrs} width="{w}" height="{h}" viewBox="0 0 {w} {h}" role="img" aria-label="{_e(label)}">',
             f'<rect x="{left}" y="{top}" width="{w - left - right}" height="{h - top - bottom}" fill="#fafafa" '
             'stroke="#999"/>']
    for t in (0.0, 0.25, 0.5, 0.75, 1.0):
        parts.append(f'<line x1="{left}" x2="{w - right}" y1="{y(t):.1f}" y2="{y(t):.1f}" stroke="#e4e4e4"/>'
                     f'<text x="{left - 4}" y="{y(t) + 4:.1f}" text-anchor="end">{t:.2f}</text>')
    return parts

def esc(value: object) -> str:
    """``value`` as HTML text, safe in element content and in quoted attributes."""
    return html.escape(str(value), quote=True)


_e = esc


def _nice_step(span: float) -> float:
    """A round tick step (1, 2 or 5 times a power of ten) giving at most about five ticks over ``span`` > 0."""
    step = 10 ** math.floor(math.log10(span))
    for mult in (1, 2, 5, 10):
        if span / (step * mult) <= 5:
            return step * mult
    return step


def _axis_ticks(hi: float) -> list[float]:
    if hi <= 0:
        return [0.0]
    step = _nice_step(hi)
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

    parts = accuracy_frame(f'class="plot trajectory" id="trajectory-{index}"', (w, h), (left, top, right, bottom),
                   "best dev accuracy against model calls", y)
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
    near = nearest_k(demos)
    full = f"{near} nearest demos" if near is not None else f"{len(demos)} demos: {', '.join(demos)}" if demos \
        else "no demonstrations"
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


# -- the accuracy × prompt-tokens Pareto front ------------------------------------------------

_PW, _PH, _PL, _PB, _PT, _PR = 420, 230, 44, 34, 14, 14  # width, height and the plot area's margins


def pareto_points(b: RunSummary) -> list[Candidate]:
    """The candidates of a run's Pareto plot: raced on the full dev set, with a dev accuracy and a length."""
    full = (b.selection.sizes.get("dev") if b.selection else None) or max((c.dev.n for c in b.candidates), default=0)
    return [c for c in b.candidates if c.dev.n >= full and c.dev.acc is not None and c.prompt_tokens is not None]


def _token_axis(points: list[Candidate]) -> tuple[float, float, list[float]]:
    """The prompt-tokens axis: its ends (a little beyond the shortest and longest prompt) and its ticks."""
    lo, hi = min(c.prompt_tokens or 0 for c in points), max(c.prompt_tokens or 0 for c in points)
    pad = max(1.0, (hi - lo) * 0.08)
    x0, x1 = max(0.0, lo - pad), hi + pad
    step = _nice_step(x1 - x0)
    return x0, x1, [k * step for k in range(math.ceil(x0 / step), math.floor(x1 / step) + 1)]


def _point_title(c: Candidate, front: bool) -> str:
    near = nearest_k(c.demos)
    demos = "" if c.demos is None else f" ({nearest_phrase(near)})" if near is not None else \
        f" ({len(c.demos)} demonstrations: {', '.join(c.demos)})"
    return (f"{_e(c.id)}{' (Pareto front)' if front else ''}: {c.prompt_tokens} prompt tokens, dev accuracy "
            f"{c.dev.acc:.3f} on {c.dev.n} — {_e(c.text)}{_e(demos)}")


def _pareto_marks(b: RunSummary, points: list[Candidate], front: list[Candidate], x, y) -> list[str]:
    """The front's step line, one circle per candidate (front ones filled and labelled), the incumbent's dashed ring
    and the shipped prompt's red diamond."""
    parts = []
    if front:
        pts, prev = [], None
        for c in front:
            if prev is not None:
                pts.append(f"{x(c.prompt_tokens):.1f},{y(prev):.1f}")
            pts.append(f"{x(c.prompt_tokens):.1f},{y(c.dev.acc):.1f}")
            prev = c.dev.acc
        pts.append(f"{_PW - _PR:.1f},{y(prev):.1f}")
        parts.append(f'<polyline class="front-line" fill="none" stroke="#1f77b4" stroke-width="1.5" '
                     f'points="{" ".join(pts)}"><title>Pareto front, shortest first: '
                     f'{_e(", ".join(c.id for c in front))}</title></polyline>')
    on_front = {c.id for c in front}
    for c in sorted(points, key=lambda c: c.id in on_front):  # the front drawn last, on top
        on = c.id in on_front
        cx, cy = x(c.prompt_tokens), y(c.dev.acc)
        parts.append(f'<circle class="pt{" front" if on else ""}" data-id="{_e(c.id)}" cx="{cx:.1f}" cy="{cy:.1f}" '
                     f'r="{4.5 if on else 3.5}" fill="{"#1f77b4" if on else "#fff"}" '
                     f'stroke="{"#1f77b4" if on else "#888"}" stroke-width="1.5"><title>{_point_title(c, on)}</title>'
                     '</circle>')
        if on and len(front) <= 8:  # labelled to the right, or to the left near the right edge
            lx, anchor = (cx + 6, "start") if cx < _PW - _PR - 50 else (cx - 6, "end")
            parts.append(f'<text class="pt-label" x="{lx:.1f}" y="{cy - 6:.1f}" text-anchor="{anchor}">{_e(c.id)}'
                         '</text>')
    by_id = {c.id: c for c in points}
    inc = by_id.get(b.selection.incumbent or "") if b.selection else None
    if inc is not None:
        parts.append(f'<circle class="incumbent" cx="{x(inc.prompt_tokens):.1f}" cy="{y(inc.dev.acc):.1f}" r="8" '
                     f'fill="none" stroke="#333" stroke-dasharray="2 2"><title>incumbent: '
                     f'{_point_title(inc, inc.id in on_front)}</title></circle>')
    shipped = by_id.get(b.best_candidate or "")
    if shipped is not None:
        sx, sy = x(shipped.prompt_tokens), y(shipped.dev.acc)
        title = _point_title(shipped, shipped.id in on_front)
        parts.append(f'<path class="shipped" d="M{sx:.1f},{sy - 10:.1f} l10,10 l-10,10 l-10,-10 z" fill="none" '
                     f'stroke="#d62728" stroke-width="2"><title>shipped: {title}</title></path>')
    return parts


def _pareto_legend(b: RunSummary, points: list[Candidate], front: list[Candidate]) -> str:
    by_id = {c.id: c for c in points}
    dot = '<svg width="12" height="12"><circle cx="6" cy="6" r="4" fill="{}" stroke="{}" stroke-width="1.5"/></svg>'
    items = [f'{dot.format("#1f77b4", "#1f77b4")} Pareto front, shortest first: '
             + ", ".join(f'<span class="mono">{_e(c.id)}</span> ({c.prompt_tokens} tokens, dev {c.dev.acc:.2f})'
                         for c in front),
             f'{dot.format("#fff", "#888")} {len(points) - len(front)} other '
             f'candidate{"" if len(points) - len(front) == 1 else "s"} raced on the full dev set']
    if b.best_candidate is not None:
        where = "" if b.best_candidate in by_id else " (not raced on the full dev set: not plotted)"
        items.append('<svg width="12" height="12"><path d="M6,0 l6,6 l-6,6 l-6,-6 z" fill="none" stroke="#d62728" '
                     f'stroke-width="2"/></svg> shipped: <span class="mono">{_e(b.best_candidate)}</span>{where}')
    inc = b.selection.incumbent if b.selection else None
    if inc is not None:
        where = "" if inc in by_id else " (not raced on the full dev set: not plotted)"
        items.append('<svg width="12" height="12"><circle cx="6" cy="6" r="5" fill="none" stroke="#333" '
                     f'stroke-dasharray="2 2"/></svg> incumbent: <span class="mono">{_e(inc)}</span>{where}')
    return '<ul class="legend">' + "".join(f"<li>{item}</li>" for item in items) + "</ul>"


def pareto_svg(b: RunSummary, index: int) -> str:
    """A run's candidates raced on the full dev set, dev accuracy against prompt tokens, with the Pareto front (no
    other candidate is both more accurate and shorter) joined by a step line, the shipped prompt and the incumbent
    marked; empty for a run written before prompt lengths and the front were recorded."""
    if b.pareto is None:
        return ""
    points = pareto_points(b)
    if not points:
        return '<p class="note">No candidate with a recorded length was raced on the full dev set: no Pareto front.</p>'
    by_id = {c.id: c for c in points}
    front = sorted((by_id[i] for i in b.pareto if i in by_id), key=lambda c: c.prompt_tokens or 0)
    x0, x1, ticks = _token_axis(points)

    def x(t):
        return _PL + (_PW - _PL - _PR) * (t - x0) / (x1 - x0)

    def y(v):
        return _PT + (_PH - _PT - _PB) * (1 - v)

    label = (f"dev accuracy against prompt tokens of {len(points)} candidates raced on the full dev set; Pareto "
             f"front: {', '.join(c.id for c in front) or 'none'}")
    parts = accuracy_frame(f'class="plot pareto" id="pareto-{index}"', (_PW, _PH), (_PL, _PT, _PR, _PB), label, y)
    for t in ticks:
        parts.append(f'<text x="{x(t):.1f}" y="{_PH - _PB + 14}" text-anchor="middle">{t:g}</text>')
    parts.append(f'<text x="{(_PL + _PW - _PR) / 2}" y="{_PH - 4}" text-anchor="middle">prompt tokens</text>'
                 f'<text x="12" y="{(_PT + _PH - _PB) / 2}" text-anchor="middle" '
                 f'transform="rotate(-90 12 {(_PT + _PH - _PB) / 2})">dev accuracy</text>')
    parts += _pareto_marks(b, points, front, x, y)
    parts.append("</svg>")
    ranked = " (the front ranks by gold log-probability, the run's scoring)" if b.scoring == "logprob" else ""
    return ('<figure><figcaption>Dev accuracy against prompt tokens (instruction and demonstrations) of every '
            "candidate of the shipped prompt's run raced on the full dev set: the filled points, joined by a step "
            f"line, are the Pareto front (no other candidate is both more accurate and shorter){ranked}; red diamond: "
            f'the shipped prompt; dashed ring: the incumbent; hover a point for its text</figcaption>{"".join(parts)}'
            f"{_pareto_legend(b, points, front)}</figure>")
