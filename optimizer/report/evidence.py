"""The HTML of a row's verdict: which prompt shipped against the incumbent, and the confirmation evidence.

Every text from a run (instructions, candidate ids, example ids, notes) goes through
:func:`optimizer.report.plots.esc`.
"""

from __future__ import annotations

from optimizer.report.build import RunSummary
from optimizer.report.plots import esc as _e
from optimizer.report.text import DASH, fmt_ci, incumbent_text
from optimizer.tasks.nearest import nearest_k, nearest_phrase
from optimizer.types import INCUMBENT_KINDS, Candidate, FinalistTest, Score, Selection

__all__ = ["SELECTION_STYLE", "demos_html", "incumbent_cell", "selection_html", "shipped_demos_html", "verdict_cell"]

SELECTION_STYLE = """
.v { font-weight: 600; } .v-improved { color: #1a7f37; } .v-no-significant-improvement { color: #6e6e6e; }
.v-not-tested { color: #9a6700; } .v-shorter-not-significantly-worse { color: #0b6e99; }
table.confirm td.num { text-align: right; } table.confirm tr.ships td { background: #eef8ee; }
table.confirm tr.incumbent td { background: #f4f4f4; }
"""
"""Styles added to the page when a row has a verdict."""



def _slug(verdict: str) -> str:
    return "v-" + "-".join("".join(ch if ch.isalnum() else " " for ch in verdict).split())


def _sizes(sel: Selection) -> str:
    s = sel.sizes
    return f"dev {s.get('dev', DASH)} / confirm {s.get('confirm', DASH)} / test {s.get('test', DASH)}"


def verdict_cell(b: RunSummary) -> str:
    """The verdict for the table, with its deciding p-value and the sizes of dev, confirm and test under it."""
    sel = b.selection
    if sel is None:
        return DASH
    win = next((t for t in sel.finalists if t.candidate == sel.shipped), None)
    if win is not None:
        detail = f"{win.candidate}: adjusted p {win.p_adjusted:.3g}"
    elif sel.finalists:
        detail = f"lowest adjusted p {min(t.p_adjusted for t in sel.finalists):.3g} ({len(sel.finalists)} finalists)"
    else:
        detail = sel.note or ""
    return (f'<span class="v {_slug(sel.verdict)}">{_e(sel.verdict)}</span><br>'
            f'<small>{_e(detail)}{"<br>" if detail else ""}{_e(_sizes(sel))}</small>')


def incumbent_cell(b: RunSummary) -> str:
    """Where the incumbent came from, with its instruction on hover."""
    text = incumbent_text(b.selection)
    inc = b.vs_incumbent
    return f'<span title="{_e(inc.text)}">{_e(text)}</span>' if inc is not None and inc.text else _e(text)


def demos_html(demos: tuple[str, ...] | None, k: int | None = None,
               before: tuple[str, ...] | None = None) -> str:
    """A prompt's demonstrations as a phrase: how many and which (ids in order; those not in ``before`` are marked
    added, those only in ``before`` removed), or the run's fixed ones (``k`` of them, when known)."""
    if demos is None:
        return "no demonstrations" if k == 0 else "the run's demonstrations" + ("" if k is None else f" ({k})")
    if not demos:
        return "no demonstrations"
    if (near := nearest_k(demos)) is not None:
        return _e(nearest_phrase(near))
    ids = [f"<ins>{_e(d)}</ins>" if before is not None and d not in before else _e(d) for d in demos]
    removed = [f"<del>{_e(d)}</del>" for d in before or () if d not in demos]
    return (f'{len(demos)} demonstration{"s" if len(demos) > 1 else ""} '
            f'(<span class="mono">{", ".join(ids + removed)}</span>)')


def _finalist_row(c: Candidate | None, cid: str, confirm: Score | None, test: FinalistTest | None, cls: str,
                  label: str, score: str) -> str:
    def num(v, fmt="{:.2f}"):
        return DASH if v is None else fmt.format(v)

    acc = None if confirm is None else (confirm.acc if score == "accuracy" else confirm.lp)
    return (f'<tr class="{cls}"><td class="mono">{_e(cid)}{_e(label)}</td>'
            f'<td>{_e(c.text if c else "")}</td><td>{demos_html(c.demos) if c else DASH}</td>'
            f'<td class="num">{num(acc)}</td><td class="num">{num(test.diff if test else None, "{:+.3f}")}</td>'
            f'<td class="num">{num(test.p_value if test else None, "{:.3g}")}</td>'
            f'<td class="num">{num(test.p_adjusted if test else None, "{:.3g}")}</td>'
            f'<td>{"" if test is None else ("yes" if test.significant else "no")}</td></tr>')


def _finalists_table(b: RunSummary, sel: Selection) -> str:
    by_id = {c.id: c for c in b.candidates}
    rows = []
    if sel.incumbent is not None:
        shipped = " (incumbent, ships)" if sel.shipped == sel.incumbent else " (incumbent)"
        cls = "incumbent ships" if sel.shipped == sel.incumbent else "incumbent"
        rows.append(_finalist_row(by_id.get(sel.incumbent), sel.incumbent, sel.incumbent_confirm, None, cls, shipped,
                                  sel.score))
    for t in sel.finalists:
        ships = t.candidate == sel.shipped
        rows.append(_finalist_row(by_id.get(t.candidate), t.candidate, t.confirm, t, "ships" if ships else "",
                                  " (ships)" if ships else "", sel.score))
    score = "accuracy" if sel.score == "accuracy" else "log-probability"
    return ('<table class="confirm"><thead><tr><th>prompt</th><th>instruction</th><th>demonstrations</th>'
            f'<th>confirm {score}</th><th>Δ vs incumbent</th><th>p</th><th>adjusted p</th><th>significant</th></tr>'
            f'</thead><tbody>{"".join(rows)}</tbody></table>')


def selection_html(b: RunSummary) -> str:
    """The verdict paragraph, the finalists against the incumbent on the confirmation examples, the sizes and the
    test used, and the shipped prompt against the incumbent on test; empty for a run without a verdict."""
    sel = b.selection
    if sel is None:
        return ""
    inc = f"the incumbent ({INCUMBENT_KINDS.get(sel.incumbent_origin or '', 'no instruction')}, id {sel.incumbent})"
    confirm = sel.sizes.get("confirm", DASH)
    never = f"on {confirm} dev examples racing never saw"
    head = {"improved": f"finalist {sel.shipped} beat {inc} {never}, and ships",
            "no significant improvement": f"no finalist beat {inc} {never}, so the incumbent ships",
            "shorter, not significantly worse": f"{sel.shipped} ships: shorter, and not significantly worse than the "
                                                f"best finalist {never} (compared with {inc})",
            }.get(sel.verdict, "the finalists were not compared with the incumbent")
    out = [f'<p class="verdict">Verdict: <span class="v {_slug(sel.verdict)}">{_e(sel.verdict)}</span> — '
           f"{_e(head)}.</p>"]
    if sel.finalists or sel.incumbent_confirm is not None:
        out.append(_finalists_table(b, sel))
    sizes = sel.sizes
    out.append(f'<p class="note">Examples: {_e(sizes.get("dev", DASH))} dev (racing), {_e(confirm)} confirm (held '
               f'out from racing), {_e(sizes.get("test", DASH))} test (reported, never used to choose).'
               + (f" Test: {_e(sel.test)}; alpha {sel.alpha:g}." if sel.test else "") + "</p>")
    if sel.note:
        out.append(f'<p class="note">{_e(sel.note)}</p>')
    c = b.vs_incumbent
    if c is not None:
        label = incumbent_text(sel) + (", which ships" if c.baseline == "best" else "")
        text = f": <q>{_e(c.text)}</q>" if c.text else ""
        acc = DASH if c.test_acc is None else f"{c.test_acc:.2f}"
        out.append(f"<p>Against the incumbent ({_e(label)}){text} (test {acc}): difference "
                   f"{_e(fmt_ci(c.diff, c.ci, sign=True))} over {c.n} paired test examples.</p>")
    return "".join(out)


def shipped_demos_html(b: RunSummary) -> str:
    """The shipped prompt's demonstrations, for a run with a verdict."""
    if b.selection is None or b.best_text is None:
        return ""
    return f"<p>It shows {demos_html(b.demos, b.demos_k)}{', in this order' if b.demos else ''}.</p>"
