"""The leaderboard and a run's details for the terminal (rich) and as Markdown.

Prompt texts are written by a model and task texts by anyone: they go into rich ``Text``
objects (never parsed as console markup) and are escaped in Markdown.
"""

from __future__ import annotations

import os
from collections import Counter

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from optimizer.report.build import (
    Comparison,
    Leaderboard,
    LeaderboardRow,
    LineageStep,
    RunSummary,
    WrongExamples,
)
from optimizer.report.curves import learning_curves_markdown
from optimizer.tasks.nearest import nearest_k, nearest_phrase
from optimizer.types import INCUMBENT_KINDS, Selection

__all__ = ["TRAINING_COLUMNS", "columns", "demos_text", "evidence_text", "fmt_ci", "fmt_diff", "has_selection",
           "has_training", "incumbent_text", "md_escape", "render_lineage", "render_markdown", "render_table",
           "render_wrong", "row_cells", "sources_text", "status_text"]

DASH = "—"
COLUMNS = ("task", "searcher", "target", "test acc [95% CI]", "Δ vs none [95% CI]", "Δ vs human [95% CI]",
           "dev acc", "seeds", "calls", "tokens", "cost", "wall", "status", "runs", "best prompt")
SELECTION_COLUMNS = ("verdict", "Δ vs incumbent [95% CI]", "incumbent", "demos")
"""Shown after the baselines when a row's run chose its prompt against an incumbent (older runs did not)."""
ORIGINS = {"initial": "initial prompt", "human": "best human", "none": "no instruction"}
"""How an incumbent's origin is shown."""
_AT = COLUMNS.index("Δ vs human [95% CI]") + 1
TRAINING_COLUMNS = ("trained params", "train examples", "train time", "tokens/example")
"""Shown before the status when a row's prompt was trained (prompt tuning, prefix tuning, P-tuning, LoRA)."""
_TRAIN_AT = COLUMNS.index("status")


def _num(value: float | None, digits: int = 2, sign: bool = False) -> str:
    if value is None:
        return DASH
    return f"{value:+.{digits}f}" if sign else f"{value:.{digits}f}"


def fmt_ci(value: float | None, ci: tuple[float, float] | None, sign: bool = False) -> str:
    """``0.77 [0.69, 0.85]``; the interval is left out when there is none."""
    if value is None:
        return DASH
    text = _num(value, sign=sign)
    return text + (f" [{_num(ci[0], sign=sign)}, {_num(ci[1], sign=sign)}]" if ci else "")


def fmt_diff(c: Comparison | None) -> str:
    """A paired difference with its interval, or a dash."""
    return DASH if c is None else fmt_ci(c.diff, c.ci, sign=True)


def status_text(row: LeaderboardRow) -> str:
    """The winner's status, then how many other runs of the row did not finish."""
    others = Counter(r.status for r in row.runs[1:] if r.status != "complete")
    extra = ", ".join(f"+{n} {s}" for s, n in sorted(others.items()))
    return row.status + (f" ({extra})" if extra else "")


def _seeds(row: LeaderboardRow) -> str:
    seeds = " ".join(str(s) for s in row.seeds)
    s = row.seed_spread
    return seeds + (f"; test {s.mean:.2f}±{s.sd:.2f}" if s else "")


def has_selection(lb: Leaderboard) -> bool:
    """Whether any row's winning run chose its prompt against an incumbent (and so has a verdict)."""
    return any(row.best.selection is not None for row in lb.rows)


def has_training(lb: Leaderboard) -> bool:
    """Whether any row's shipped prompt is a trained adapter, or any row's runs had a training limit."""
    return any(row.best.trainable_params > 0 or row.best.train_limit is not None for row in lb.rows)


def columns(lb: Leaderboard) -> tuple[str, ...]:
    """The board's columns: :data:`COLUMNS`, with :data:`SELECTION_COLUMNS` when any row has a verdict and
    :data:`TRAINING_COLUMNS` when any row's prompt was trained or had a training limit."""
    cols = COLUMNS[:_TRAIN_AT] + TRAINING_COLUMNS + COLUMNS[_TRAIN_AT:] if has_training(lb) else COLUMNS
    return cols[:_AT] + SELECTION_COLUMNS + cols[_AT:] if has_selection(lb) else cols


def demos_text(demos: tuple[str, ...] | None, k: int | None = None, ids: bool = False) -> str:
    """A prompt's demonstrations: ``run's 2`` (the run's fixed ones), ``0`` (none), ``8``, or ``8: w0, w3 …`` with
    ``ids``."""
    if demos is None:
        return "0" if k == 0 else "run's" + ("" if k is None else f" {k}")
    if (near := nearest_k(demos)) is not None:
        return f"{near} nearest"
    return f"{len(demos)}" + (f": {', '.join(demos)}" if ids and demos else "")


def incumbent_text(sel: Selection | None) -> str:
    """Where the incumbent came from (``best human`` …), or a dash."""
    origin = sel.incumbent_origin if sel else None
    return DASH if origin is None else ORIGINS.get(origin, origin)


def _selection_cells(b: RunSummary, ids: bool) -> list[str]:
    demos = DASH if b.best_text is None else demos_text(b.demos, b.demos_k, ids)
    return [b.verdict or DASH, fmt_diff(b.vs_incumbent), incumbent_text(b.selection), demos]


def row_cells(row: LeaderboardRow, selection: bool = False, ids: bool = False, training: bool = False) -> list[str]:
    """The plain-text cells of one row, in :data:`COLUMNS` order, or in :func:`columns` order with ``selection``
    and ``training`` (``ids``: the demonstrations' example ids too)."""
    b = row.best
    dev = b.dev.acc if b.dev else None
    runs = ", ".join(row.run_ids)
    cells = [
        row.task, row.searcher, row.target,
        fmt_ci(b.test.acc if b.test else None, b.test_ci), fmt_diff(b.vs_none), fmt_diff(b.vs_human),
        _num(dev), _seeds(row),
        DASH if row.calls is None else f"{row.calls:,}",
        DASH if row.tokens is None else f"{row.tokens:,}",
        DASH if row.cost_usd is None else f"${row.cost_usd:.4f}",
        DASH if row.wall_s is None else f"{row.wall_s:.0f} s",
        status_text(row), runs, b.best_text if b.best_text is not None else DASH,
    ]
    if training:
        cells[_TRAIN_AT:_TRAIN_AT] = [
            f"{b.trainable_params:,}", DASH if b.train_examples is None else str(b.train_examples),
            DASH if b.train_s is None else f"{b.train_s:.0f} s",
            DASH if b.tokens_per_example is None else f"{b.tokens_per_example:.1f}"]
    return cells[:_AT] + _selection_cells(b, ids) + cells[_AT:] if selection else cells


def evidence_text(b: RunSummary) -> str | None:
    """The verdict with its evidence in a few sentences: the incumbent, each finalist's difference and p-values
    on the confirmation examples, the sizes of dev, confirm and test; None for a run without a verdict."""
    sel = b.selection
    if sel is None:
        return None
    sizes = sel.sizes
    inc = f"the incumbent ({INCUMBENT_KINDS.get(sel.incumbent_origin or '', 'no instruction')}, id {sel.incumbent})"
    on = f"on {sizes.get('confirm', DASH)} held-out dev examples"
    head = {"improved": f"improved: {sel.shipped} beat {inc} {on} and ships",
            "no significant improvement": f"no significant improvement: no finalist beat {inc} {on}, so it ships",
            "shorter, not significantly worse": f"shorter, not significantly worse: {sel.shipped} ships (compared "
                                                f"with {inc} {on})"}.get(sel.verdict, sel.verdict)
    parts = [head]
    if sel.finalists:
        tests = "; ".join(f"{t.candidate} {t.diff:+.3f}, p {t.p_value:.3g}, adjusted {t.p_adjusted:.3g}"
                          for t in sel.finalists)
        parts.append(f"Finalist minus incumbent ({sel.score}): {tests} (alpha {sel.alpha:g})")
    if sel.note:
        parts.append(sel.note[0].upper() + sel.note[1:])
    parts.append(f"Examples: dev {sizes.get('dev', DASH)} (racing) / confirm {sizes.get('confirm', DASH)} / "
                 f"test {sizes.get('test', DASH)}")
    return ". ".join(parts + _lengths(b)) + "."


def _lengths(b: RunSummary) -> list[str]:
    """The shipped prompt's length and the run's accuracy × prompt-tokens Pareto front (none for older runs)."""
    parts = []
    if b.prompt_tokens is not None:
        per = "" if b.tokens_per_example is None else f", {b.tokens_per_example:.1f} tokens/example"
        parts.append(f"Shipped prompt: {b.prompt_tokens} prompt tokens{per}")
    if b.pareto:
        by_id = {c.id: c for c in b.candidates}
        front = [f"{cid} dev {_num(by_id[cid].dev.acc)} at {by_id[cid].prompt_tokens} tokens" if cid in by_id else cid
                 for cid in b.pareto]
        parts.append(f"Pareto front (dev accuracy × prompt tokens, shortest first): {'; '.join(front)}")
    return parts


def sources_text(lb: Leaderboard) -> str:
    """Where the runs came from, short: the folders, or how many run folders under their common parent."""
    if len(lb.sources) <= 2:
        return ", ".join(lb.sources)
    try:
        common = os.path.commonpath(lb.sources)
    except ValueError:  # mixed absolute and relative paths
        return ", ".join(lb.sources)
    return f"{len(lb.sources)} folders under {common or '.'}"


def _caption(lb: Leaderboard) -> str:
    n_runs = sum(len(r.run_ids) for r in lb.rows)
    filters = "; ".join(f"{k}: {', '.join(v)}" for k, v in lb.filters.items())
    return (f"{len(lb.rows)} rows from {n_runs} runs in {sources_text(lb)}" + (f" ({filters})" if filters else "")
            + f". Sorted by {lb.sort_order}. Calls, tokens, cost and wall time add up every run of a row."
            + (f" {SELECTION_NOTE}" if has_selection(lb) else ""))


SELECTION_NOTE = ("Verdict: whether a finalist of racing beat the incumbent (the user's initial prompt, else the best "
                  "human instruction, else no instruction) in a one-sided paired permutation test, corrected for the "
                  "number of finalists (step-down max-T), on "
                  "dev examples racing never saw; otherwise the incumbent ships. Δ vs incumbent: the shipped prompt "
                  "minus the incumbent on test (zero when the incumbent shipped). Demos: how many demonstrations the "
                  "shipped prompt shows (run's: the run's fixed ones).")


def _terminal_cells(row: LeaderboardRow, selection: bool, training: bool) -> list[str]:
    """A row's table cells for the terminal: without runs and prompt (printed under the table), and with the
    incumbent folded into the verdict (``improved vs best human``) to save a column."""
    cells = row_cells(row, selection, training=training)[:-2]
    if selection:
        at = _AT + SELECTION_COLUMNS.index("verdict")
        incumbent = cells.pop(_AT + SELECTION_COLUMNS.index("incumbent"))
        cells[at] += f" vs {incumbent}" if incumbent != DASH else ""
    # intervals and the seed spread go on a second line, to fit common terminal widths
    return [c.replace(" [", "\n[").replace("; ", "\n") for c in cells]


NARROW_DROPS = ("tokens", "Δ vs none [95% CI]", "Δ vs human [95% CI]", "cost", "dev acc", "tokens/example",
                "train time", "seeds", "train examples", "wall", "trained params", "demos", "searcher", "calls")
"""Columns the terminal table leaves out, first to last, until its rows fit the terminal's width without folding
numbers (Markdown and HTML keep every column)."""
_TEXT = ("task", "searcher", "target", "status", "verdict")


def _fitting(cols: list[str], cells: list[list[str]], width: int, drops: tuple[str, ...]) -> list[str]:
    """The columns of ``drops`` to leave out, first to last, so that the table fits ``width`` characters (text
    columns counted at up to 14 characters, as they fold)."""
    def need(j: int) -> int:
        lines = [line for cell in [cols[j].replace(" [", "\n["), *(row[j] for row in cells)]
                 for line in cell.replace(" [", "\n[").replace("; ", "\n").split("\n")]
        longest = max(map(len, lines))
        return (min(longest, 14) if cols[j] in _TEXT else longest) + 2

    widths = {col: need(j) for j, col in enumerate(cols)}
    dropped: list[str] = []
    for col in drops:
        if sum(w for c, w in widths.items() if c not in dropped) <= width:
            break
        if col in widths:
            dropped.append(col)
    return dropped


def render_table(lb: Leaderboard, console: Console) -> None:
    """Print the leaderboard as a rich table, each row's runs and best prompt under it (with the verdict's
    evidence and the shipped prompt's demonstrations), then any unreadable run folders. In a narrow terminal
    the columns of :data:`NARROW_DROPS` are left out, first to last, until the rest fit (then the status, when every
    row is complete); the caption names them."""
    selection, training = has_selection(lb), has_training(lb)
    cols = ["#"] + [c for c in columns(lb)[:-2] if c != "incumbent"]
    rows = [[str(i), *_terminal_cells(row, selection, training)] for i, row in enumerate(lb.rows, 1)]
    complete = all(row.status == "complete" and not row.incomplete for row in lb.rows)
    dropped = _fitting(cols, rows, console.width, NARROW_DROPS + (("status",) if complete else ()))
    keep = [j for j, col in enumerate(cols) if col not in dropped]
    cols, rows = [cols[j] for j in keep], [[row[j] for j in keep] for row in rows]
    left_out = (f" Left out to fit the terminal: {', '.join(c.replace(' [95% CI]', '') for c in dropped)} "
                "(a wider terminal, or --format md or html, shows them).") if dropped else ""
    table = Table(title="apo leaderboard", caption=_caption(lb) + left_out, box=box.SIMPLE_HEAD,
                  caption_justify="left", collapse_padding=True, pad_edge=not selection)
    for col in cols:
        numeric = col not in ("task", "searcher", "target", "status", "verdict", "demos")
        # with the verdict columns, intervals and the seeds may wrap to fit common terminal widths
        no_wrap = numeric and not (selection and (col.endswith("[95% CI]") or col == "seeds"))
        header = {"verdict": "verdict\nvs incumbent", "dev acc": "dev\nacc" if selection else col}.get(
            col, col.replace(" [", "\n["))
        table.add_column(header, overflow="fold", no_wrap=no_wrap, min_width=None if numeric else 6,
                         justify="right" if col in ("#", "calls", "tokens", "cost", "wall") else "left")
    for row, cells in zip(lb.rows, rows):
        style = None if row.status == "complete" and not row.incomplete else "yellow"
        table.add_row(*[Text(c) for c in cells], style=style)
    console.print(table)
    for i, row in enumerate(lb.rows, 1):
        line = Text(f"#{i} ", style="bold")
        line.append(f"{', '.join(row.run_ids)}: ", style="dim")
        line.append(row.best.best_text if row.best.best_text is not None else DASH)
        console.print(line)
        _print_evidence(row.best, console)
    for s in lb.skipped:
        console.print(Text(f"unreadable run {s.path}: {s.reason}", style="red"))


def _print_evidence(b: RunSummary, console: Console) -> None:
    evidence = evidence_text(b)
    if evidence is not None:
        console.print(Text(f"   {evidence}", style="dim"))
    if (near := nearest_k(b.demos)) is not None:
        console.print(Text(f"   demonstrations of the shipped prompt: {nearest_phrase(near)}", style="dim"))
    elif b.demos:
        console.print(Text(f"   demonstrations of the shipped prompt, in order: {', '.join(b.demos)}", style="dim"))


def md_escape(text: str) -> str:
    """Text safe inside a Markdown table cell: punctuation escaped, one line."""
    out = []
    for ch in " ".join(text.split()):
        out.append("\\" + ch if ch in "\\`*_[]<>|#~&!{}" else ch)
    return "".join(out)


def render_markdown(lb: Leaderboard) -> str:
    """The leaderboard as a GitHub-flavoured Markdown table (every run id listed)."""
    cols, selection, training = columns(lb), has_selection(lb), has_training(lb)
    lines = ["# apo leaderboard", "", md_escape(_caption(lb)), "",
             "| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    text_cols = {"task", "searcher", "target", "seeds", "status", "runs", "best prompt", "demos"}
    for row in lb.rows:
        cells = [md_escape(c) if col in text_cols else c for col, c in zip(cols, row_cells(row, selection, ids=True,
                                                                                          training=training))]
        lines.append("| " + " | ".join(cells) + " |")
    evidence = [(i, row, evidence_text(row.best)) for i, row in enumerate(lb.rows, 1)]
    if selection:
        lines += ["", "Verdicts and their evidence:", ""]
        lines += [f"- #{i} {md_escape(f'{row.task} · {row.searcher} · {row.target}')}: {md_escape(text)}"
                  for i, row, text in evidence if text is not None]
    lines += learning_curves_markdown(lb, md_escape)
    if lb.skipped:
        lines += ["", "Unreadable run folders:", ""]
        lines += [f"- {md_escape(s.path)}: {md_escape(s.reason)}" for s in lb.skipped]
    return "\n".join(lines) + "\n"


def render_lineage(steps: list[LineageStep], console: Console) -> None:
    """Print the winner's lineage: each step's score, then its word differences from its parent."""
    if not steps:
        console.print("lineage: the best prompt is not among the searched candidates")
        return
    console.print(Text("lineage of the best prompt (demonstrations → proposal → variations):", style="bold"))
    for i, s in enumerate(steps):
        acc = _num(s.dev.acc)
        near = nearest_k(s.demos)
        demos = "" if s.demos is None else (f" with {nearest_phrase(near)}" if near is not None else
                                            f" with {len(s.demos)} demonstrations ({', '.join(s.demos)})" if s.demos
                                            else " with no demonstrations")
        head = Text(f"{'  ' * i}{'└─ ' if i else ''}{s.id} {s.origin} (round {s.round}) dev {acc} on {s.dev.n}"
                    f"{demos}: ")
        if not s.diff:
            head.append(s.text)
        for op, words in s.diff:
            style = {"same": None, "add": "green", "del": "red strike"}[op]
            mark = {"same": "", "add": "+", "del": "-"}[op]
            head.append(f"{mark}{{{words}}} " if mark else words + " ", style=style)
        console.print(head)


def render_wrong(wrong: WrongExamples | None, console: Console, limit: int = 10) -> None:
    """Print the test examples the best prompt gets wrong (the first ``limit``)."""
    if wrong is None:
        console.print("no test scores for the best prompt (the run stopped before the test evaluation)")
        return
    console.print(Text(f"test examples the best prompt gets wrong: {len(wrong.wrong)} of {wrong.n_test}"
                       + (f" (first {limit})" if len(wrong.wrong) > limit else ""), style="bold"))
    if wrong.note:
        console.print(Text(wrong.note, style="yellow"))
    for w in wrong.wrong[:limit]:
        line = Text(f"  ✗ [{w.id}] ")
        if w.input is not None:
            line.append(f"{w.input!r} → ")
        line.append(repr(w.output), style="red")
        if w.gold is not None:
            line.append(f" (gold {w.gold!r})")
        if w.error:
            line.append(f" error: {w.error}", style="red")
        console.print(line)
