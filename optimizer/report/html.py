"""The leaderboard as one self-contained HTML page: a sortable table and inline SVG plots.

Nothing is loaded from the network: styles, the sorting script and the plots are inline, and a
Content-Security-Policy forbids every load and every script but the page's own (allowed by its
sha256). Every text that comes from a run — prompts written by a model, task names, model ids,
run ids — is escaped with :func:`html.escape` before it reaches the page; none is ever placed
inside the ``<script>`` element.
"""

from __future__ import annotations

import base64
import hashlib
import html
import math

from optimizer.report.build import Leaderboard, LeaderboardRow
from optimizer.report.text import COLUMNS, fmt_ci, row_cells, sources_text, status_text

__all__ = ["render_html"]

PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf")

# Sorting: click a header (again to reverse); "#sort=COL-asc|desc" in the URL sorts on load.
# Empty cells sort last either way; ties keep the documented order (data-rank).
SCRIPT = r"""(function () {
  var table = document.getElementById("board");
  var body = table.tBodies[0];
  var heads = table.tHead.rows[0].cells;
  function value(row, col) { return row.cells[col].getAttribute("data-v"); }
  function sortBy(col, desc) {
    var rows = Array.prototype.slice.call(body.rows);
    var numeric = heads[col].getAttribute("data-type") === "num";
    rows.sort(function (a, b) {
      var x = value(a, col), y = value(b, col), c;
      if (x === "" || y === "") { c = (x === "") - (y === ""); }
      else if (numeric) { c = desc ? parseFloat(y) - parseFloat(x) : parseFloat(x) - parseFloat(y); }
      else { c = desc ? y.localeCompare(x) : x.localeCompare(y); }
      return c || (+a.getAttribute("data-rank")) - (+b.getAttribute("data-rank"));
    });
    rows.forEach(function (r) { body.appendChild(r); });
    for (var i = 0; i < heads.length; i++) { heads[i].removeAttribute("aria-sort"); }
    heads[col].setAttribute("aria-sort", desc ? "descending" : "ascending");
    table.setAttribute("data-sorted", col + (desc ? "-desc" : "-asc"));
  }
  Array.prototype.forEach.call(heads, function (th, col) {
    th.addEventListener("click", function () {
      sortBy(col, th.getAttribute("aria-sort") === "ascending");
    });
  });
  var m = /sort=(\d+)-(asc|desc)/.exec(window.location.hash);
  if (m && +m[1] < heads.length) { sortBy(+m[1], m[2] === "desc"); }
  document.documentElement.setAttribute("data-ready", "1");
})();
"""

STYLE = """
body { font: 14px/1.4 system-ui, -apple-system, Segoe UI, sans-serif; margin: 24px; color: #222; }
h1 { font-size: 22px; } h2 { font-size: 17px; margin-top: 28px; border-top: 1px solid #ddd; padding-top: 12px; }
table { border-collapse: collapse; margin: 8px 0; }
th, td { border: 1px solid #ccc; padding: 3px 6px; vertical-align: top; }
#board th { background: #f2f2f2; cursor: pointer; user-select: none; font-size: 13px; }
#board th[aria-sort=ascending]::after { content: " \\25B2"; }
#board th[aria-sort=descending]::after { content: " \\25BC"; }
#board td.num { text-align: right; white-space: nowrap; }
#board td.prompt { min-width: 240px; max-width: 480px; }
#board td:first-child { white-space: nowrap; } #board .mono { font-size: 11px; } #board td.runs { max-width: 170px; }
#board small { color: #555; }
#board tr.incomplete { background: #fff6d5; }
.caption, .note { color: #555; } .mono { font-family: ui-monospace, monospace; font-size: 12px; }
blockquote { margin: 6px 0; padding: 6px 10px; background: #f7f7f7; border-left: 3px solid #1f77b4;
  white-space: pre-wrap; }
ins { background: #dff5dd; text-decoration: none; } del { background: #fbdcdc; }
.plots { display: flex; flex-wrap: wrap; gap: 18px; align-items: flex-start; }
svg text { font: 11px system-ui, sans-serif; fill: #333; }
figure { margin: 0; } .scroll { overflow-x: auto; } figcaption { font-size: 12px; color: #555; margin-bottom: 4px; }
ul.legend { list-style: none; padding: 0; margin: 2px 0; font-size: 12px; max-width: 420px; }
"""


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _csp() -> str:
    digest = base64.b64encode(hashlib.sha256(SCRIPT.encode()).digest()).decode()
    return (f"default-src 'none'; script-src 'sha256-{digest}'; style-src 'unsafe-inline'; img-src 'none'; "
            "base-uri 'none'; form-action 'none'")


# -- the table -------------------------------------------------------------------------------

def _sort_values(row: LeaderboardRow) -> list[str]:
    b = row.best

    def num(v):
        return "" if v is None else repr(float(v))

    return [row.task, row.searcher, row.target, num(b.test.acc if b.test else None),
            num(b.vs_none.diff if b.vs_none else None), num(b.vs_human.diff if b.vs_human else None),
            num(b.dev.acc if b.dev else None), " ".join(map(str, row.seeds)), num(row.calls), num(row.tokens),
            num(row.cost_usd), num(row.wall_s), status_text(row), ", ".join(row.run_ids), b.best_text or ""]


NUMERIC = {"test acc [95% CI]", "Δ vs none [95% CI]", "Δ vs human [95% CI]", "dev acc", "calls", "tokens", "cost",
           "wall"}


def _table(lb: Leaderboard) -> str:
    head = "".join(f'<th scope="col" tabindex="0" data-type="{"num" if c in NUMERIC else "text"}">{_e(c)}</th>'
                   for c in COLUMNS)
    body = []
    for i, row in enumerate(lb.rows):
        cls = "incomplete" if row.status != "complete" or row.incomplete else ""
        cells = []
        for col, text, v in zip(COLUMNS, row_cells(row), _sort_values(row)):
            kind = "num" if col in NUMERIC else {"best prompt": "prompt", "runs": "runs"}.get(col, "")
            if col == "task":
                text_html = f'<a href="#row-{i + 1}">{_e(text)}</a>'
            elif col == "runs":
                more = f" +{len(row.run_ids) - 1} more" if len(row.run_ids) > 1 else ""
                text_html = f'<span class="mono" title="{_e(text)}">{_e(row.run_ids[0])}{more}</span>'
            elif col in NUMERIC and " [" in text:
                value, interval = text.split(" [", 1)
                text_html = f'{_e(value)}<br><small>[{_e(interval)}</small>'
            else:
                text_html = _e(text)
            cells.append(f'<td class="{kind}" data-v="{_e(v)}">{text_html}</td>')
        body.append(f'<tr class="{cls}" data-rank="{i}">{"".join(cells)}</tr>')
    return f'<table id="board"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'


# -- plots -----------------------------------------------------------------------------------

def _axis_ticks(hi: float) -> list[float]:
    if hi <= 0:
        return [0.0]
    step = 10 ** math.floor(math.log10(hi))
    for mult in (1, 2, 5, 10):
        if hi / (step * mult) <= 5:
            step *= mult
            break
    return [i * step for i in range(int(hi / step) + 1)]


def _trajectory_svg(row: LeaderboardRow, index: int) -> str:
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


def _distribution_svg(lb: Leaderboard) -> str:
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


def _lineage_svg(row: LeaderboardRow, index: int) -> str:
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
    box_w, box_h, gap_x, gap_y = 175, 30, 36, 10
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
        parts.append(f'<g class="node"><title>{_e(c.id)} ({_e(c.origin)}, round {c.round}): dev {acc} on '
                     f'{c.dev.n} — {_e(c.text)}</title><rect x="{px}" y="{py}" width="{box_w}" height="{box_h}" '
                     f'rx="4" fill="#fff" stroke="{stroke}" stroke-width="{2 if cid in on_path else 1}"/>'
                     f'<text x="{px + 5}" y="{py + 12}">{_e(c.id)} · {_e(c.origin)} · {acc} ({c.dev.n})</text>'
                     f'<text x="{px + 5}" y="{py + 25}">{_e(short)}</text></g>')
    parts.append("</svg>")
    return ('<figure><figcaption>Lineage of the best prompt: demonstrations → proposal → variations (red: the '
            f'path to the winner; hover a box for its full text)</figcaption>{"".join(parts)}</figure>')


# -- per-row details -------------------------------------------------------------------------

def _diff_html(row: LeaderboardRow) -> str:
    items = []
    for s in row.lineage:
        acc = "—" if s.dev.acc is None else f"{s.dev.acc:.2f}"
        head = f"<b>{_e(s.id)}</b> {_e(s.origin)}, round {s.round}, dev {acc} on {s.dev.n}: "
        if not s.diff:
            items.append(f"<li>{head}{_e(s.text)}</li>")
            continue
        words = []
        for op, text in s.diff:
            tag = {"same": None, "add": "ins", "del": "del"}[op]
            words.append(f"<{tag}>{_e(text)}</{tag}>" if tag else _e(text))
        items.append(f"<li>{head}{' '.join(words)}</li>")
    return f'<ol class="lineage-steps">{"".join(items)}</ol>' if items else ""


def _runs_table(row: LeaderboardRow) -> str:
    def num(v, fmt="{:.2f}"):
        return "—" if v is None else fmt.format(v)

    lines = []
    for r in row.runs:
        lines.append(
            f'<tr><td class="mono">{_e(r.run_id)}</td><td>{r.seed}</td><td>{_e(r.proposer)}</td><td>{_e(r.status)}'
            f'{(": " + _e(r.stop_reason)) if r.stop_reason else ""}</td><td>{num(r.dev.acc if r.dev else None)}'
            f'</td><td>{_e(fmt_ci(r.test.acc if r.test else None, r.test_ci))}</td><td>{num(r.calls, "{:,}")}</td>'
            f'<td>{num(r.cost_usd, "${:.4f}")}</td><td>{num(r.wall_s, "{:.0f} s")}</td></tr>')
    spread = row.seed_spread
    note = (f'<p class="note">Test accuracy over the {spread.n} seeds of the winning configuration: mean '
            f'{spread.mean:.3f}, sd {spread.sd:.3f}, from {spread.min:.2f} to {spread.max:.2f}.</p>' if spread else "")
    return ('<table class="runs"><thead><tr><th>run</th><th>seed</th><th>proposer</th><th>status</th>'
            '<th>dev acc</th><th>test acc [95% CI]</th><th>calls</th><th>cost</th><th>wall</th></tr></thead>'
            f'<tbody>{"".join(lines)}</tbody></table>{note}')


def _details(row: LeaderboardRow, index: int) -> str:
    b = row.best
    out = [f'<section class="row-detail" id="row-{index}"><h2>#{index} {_e(row.task)} · {_e(row.searcher)} · '
           f'{_e(row.target)} <span class="note">({_e(status_text(row))})</span></h2>']
    out.append(f'<p>Best prompt, from run <span class="mono">{_e(b.run_id)}</span> (seed {b.seed}, proposer '
               f'{_e(b.proposer)}), test accuracy {_e(fmt_ci(b.test.acc if b.test else None, b.test_ci))}:</p>'
               f'<blockquote class="prompt">{_e(b.best_text if b.best_text is not None else "—")}</blockquote>')
    for c in (b.vs_none, b.vs_human):
        if c is not None:
            label = "no instruction" if c.baseline == "no_instruction" else "best human instruction"
            text = f": <q>{_e(c.text)}</q>" if c.text else ""
            acc = "—" if c.test_acc is None else f"{c.test_acc:.2f}"
            out.append(f"<p>Against {label}{text} (test {acc}): difference "
                       f"{_e(fmt_ci(c.diff, c.ci, sign=True))} over {c.n} paired test examples.</p>")
    if b.stop_reason:
        out.append(f'<p class="note">Stopped early: {_e(b.stop_reason)}</p>')
    out.append(_runs_table(row))
    out.append('<div class="plots">')
    out.append(_trajectory_svg(row, index))
    out.append(_lineage_svg(row, index))
    out.append("</div>")
    out.append(_diff_html(row))
    out.append("</section>")
    return "".join(out)


def render_html(lb: Leaderboard) -> str:
    """The whole page.

    Args:
        lb: the leaderboard.

    Returns:
        HTML text; open the file in any browser, no network needed.
    """
    n_runs = sum(len(r.run_ids) for r in lb.rows)
    filters = "; ".join(f"{k}: {', '.join(v)}" for k, v in lb.filters.items())
    skipped = "".join(f"<li>{_e(s.path)}: {_e(s.reason)}</li>" for s in lb.skipped)
    return "".join([
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{_csp()}">',  # a constant: no quote or markup
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>apo leaderboard</title><style>{STYLE}</style></head><body>",
        "<h1>apo leaderboard</h1>",
        f'<p class="caption">{len(lb.rows)} rows from {n_runs} runs in {_e(sources_text(lb))}'
        f'{" (" + _e(filters) + ")" if filters else ""}. One row per (task, searcher, target model): the best '
        "prompt by dev score, its test accuracy with a bootstrap 95% interval, and the paired difference against "
        "the no-instruction and best-human baselines of the same run. Calls, tokens, cost and wall time add up "
        f"every run of a row; — marks a figure the runs did not record. Sorted by {_e(lb.sort_order)}; click a "
        "column header to sort by it. Rows on a yellow ground have a partial or interrupted run.</p>",
        f'<div class="scroll">{_table(lb)}</div>',
        f"<h2>Unreadable run folders</h2><ul>{skipped}</ul>" if skipped else "",
        "<h2>Candidate scores</h2>", _distribution_svg(lb),
        "".join(_details(row, i + 1) for i, row in enumerate(lb.rows)),
        f"<script>{SCRIPT}</script></body></html>\n",
    ])
