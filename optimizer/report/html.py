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

from optimizer.report.build import Leaderboard, LeaderboardRow, RunSummary
from optimizer.report.curves import learning_curves_svg
from optimizer.report.evidence import (
    SELECTION_STYLE,
    demos_html,
    incumbent_cell,
    selection_html,
    shipped_demos_html,
    verdict_cell,
)
from optimizer.report.plots import distribution_svg, lineage_svg, pareto_svg, trajectory_svg
from optimizer.report.plots import esc as _e
from optimizer.report.text import (
    SELECTION_NOTE,
    columns,
    fmt_ci,
    has_selection,
    has_training,
    row_cells,
    sources_text,
    status_text,
)
from optimizer.tasks.nearest import nearest_k, nearest_phrase

__all__ = ["render_html"]

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


def _csp() -> str:
    digest = base64.b64encode(hashlib.sha256(SCRIPT.encode()).digest()).decode()
    return (f"default-src 'none'; script-src 'sha256-{digest}'; style-src 'unsafe-inline'; img-src 'none'; "
            "base-uri 'none'; form-action 'none'")


# -- the table -------------------------------------------------------------------------------

def _sort_values(row: LeaderboardRow, selection: bool, training: bool) -> list[str]:
    b = row.best

    def num(v):
        return "" if v is None else repr(float(v))

    values = [row.task, row.searcher, row.target, num(b.test.acc if b.test else None),
              num(b.vs_none.diff if b.vs_none else None), num(b.vs_human.diff if b.vs_human else None),
              num(b.dev.acc if b.dev else None), " ".join(map(str, row.seeds)), num(row.calls), num(row.tokens),
              num(row.cost_usd), num(row.wall_s), status_text(row), ", ".join(row.run_ids), b.best_text or ""]
    if training:  # before the status, as in row_cells
        values[12:12] = [num(b.trainable_params), num(b.train_examples), num(b.train_s), num(b.tokens_per_example)]
    if selection:  # verdict, Δ vs incumbent, incumbent, demos (the number shown)
        k = (nearest_k(b.demos) or len(b.demos)) if b.demos is not None else b.demos_k
        values[6:6] = [b.verdict or "", num(b.vs_incumbent.diff if b.vs_incumbent else None),
                       (b.selection.incumbent_origin or "") if b.selection else "", num(k)]
    return values


NUMERIC = {"test acc [95% CI]", "Δ vs none [95% CI]", "Δ vs human [95% CI]", "dev acc", "calls", "tokens", "cost",
           "wall", "Δ vs incumbent [95% CI]", "demos", "trained params", "train examples", "train time",
           "tokens/example"}


def _cell(row: LeaderboardRow, col: str, text: str, i: int) -> str:
    b = row.best
    if col == "task":
        return f'<a href="#row-{i + 1}">{_e(text)}</a>'
    if col == "runs":
        more = f" +{len(row.run_ids) - 1} more" if len(row.run_ids) > 1 else ""
        return f'<span class="mono" title="{_e(text)}">{_e(row.run_ids[0])}{more}</span>'
    if col == "verdict":
        return verdict_cell(b)
    if col == "incumbent":
        return incumbent_cell(b)
    if col == "demos" and b.demos:
        near = nearest_k(b.demos)
        title = nearest_phrase(near) if near is not None else ", ".join(b.demos)
        return f'<span title="{_e(title)}">{_e(text)}</span>'
    if col in NUMERIC and " [" in text:
        value, interval = text.split(" [", 1)
        return f'{_e(value)}<br><small>[{_e(interval)}</small>'
    return _e(text)


def _table(lb: Leaderboard) -> str:
    cols, selection, training = columns(lb), has_selection(lb), has_training(lb)
    head = "".join(f'<th scope="col" tabindex="0" data-type="{"num" if c in NUMERIC else "text"}">{_e(c)}</th>'
                   for c in cols)
    body = []
    for i, row in enumerate(lb.rows):
        cls = "incomplete" if row.status != "complete" or row.incomplete else ""
        cells = []
        for col, text, v in zip(cols, row_cells(row, selection, training=training),
                                   _sort_values(row, selection, training)):
            kind = "num" if col in NUMERIC else {"best prompt": "prompt", "runs": "runs"}.get(col, "")
            cells.append(f'<td class="{kind}" data-v="{_e(v)}">{_cell(row, col, text, i)}</td>')
        body.append(f'<tr class="{cls}" data-rank="{i}">{"".join(cells)}</tr>')
    return f'<table id="board"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'


# -- per-row details -------------------------------------------------------------------------

def _diff_html(row: LeaderboardRow) -> str:
    items = []
    show_demos = row.best.selection is not None or any(s.demos is not None for s in row.lineage)
    for i, s in enumerate(row.lineage):
        acc = "—" if s.dev.acc is None else f"{s.dev.acc:.2f}"
        before = row.lineage[i - 1].demos if i else None
        demos = f", {demos_html(s.demos, before=before)}" if show_demos else ""
        head = f"<b>{_e(s.id)}</b> {_e(s.origin)}, round {s.round}, dev {acc} on {s.dev.n}{demos}: "
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


def _lengths_html(b: RunSummary) -> str:
    """The shipped prompt's length: its prompt tokens and the tokens the target reads per test example (nothing for
    runs written before lengths were recorded)."""
    if b.prompt_tokens is None:
        return ""
    per = "" if b.tokens_per_example is None else (
        f', <b>{b.tokens_per_example:.1f}</b> tokens/example (what the target reads per test example: the prompt, '
        "the input and the answer cue)")
    return (f'<p class="lengths">Length: <b>{b.prompt_tokens}</b> prompt tokens (instruction and demonstrations, '
            f"under the target's tokenizer){per}.</p>")


def _details(row: LeaderboardRow, index: int) -> str:
    b = row.best
    out = [f'<section class="row-detail" id="row-{index}"><h2>#{index} {_e(row.task)} · {_e(row.searcher)} · '
           f'{_e(row.target)} <span class="note">({_e(status_text(row))})</span></h2>']
    out.append(f'<p>{"Shipped" if b.selection else "Best"} prompt, from run <span class="mono">{_e(b.run_id)}'
               f'</span> (seed {b.seed}, proposer {_e(b.proposer)}), test accuracy '
               f'{_e(fmt_ci(b.test.acc if b.test else None, b.test_ci))}:</p>'
               f'<blockquote class="prompt">{_e(b.best_text if b.best_text is not None else "—")}</blockquote>')
    out.append(shipped_demos_html(b))
    out.append(_lengths_html(b))
    out.append(selection_html(b))
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
    out.append(trajectory_svg(row, index))
    out.append(lineage_svg(row, index))
    out.append(pareto_svg(b, index))
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
    selection = has_selection(lb)
    return "".join([
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{_csp()}">',  # a constant: no quote or markup
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>apo leaderboard</title><style>{STYLE}{SELECTION_STYLE if selection else ''}</style></head><body>",
        "<h1>apo leaderboard</h1>",
        f'<p class="caption">{len(lb.rows)} rows from {n_runs} runs in {_e(sources_text(lb))}'
        f'{" (" + _e(filters) + ")" if filters else ""}. One row per (task, searcher, target model): the best '
        "prompt by dev score, its test accuracy with a bootstrap 95% interval, and the paired difference against "
        "the no-instruction and best-human baselines of the same run. Calls, tokens, cost and wall time add up "
        f"every run of a row; — marks a figure the runs did not record. Sorted by {_e(lb.sort_order)}; click a "
        "column header to sort by it. Rows on a yellow ground have a partial or interrupted run."
        f"{' ' + _e(SELECTION_NOTE) if selection else ''}</p>",
        f'<div class="scroll">{_table(lb)}</div>',
        f"<h2>Unreadable run folders</h2><ul>{skipped}</ul>" if skipped else "",
        learning_curves_svg(lb),
        "<h2>Candidate scores</h2>", distribution_svg(lb),
        "".join(_details(row, i + 1) for i, row in enumerate(lb.rows)),
        f"<script>{SCRIPT}</script></body></html>\n",
    ])
