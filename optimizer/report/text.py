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

from optimizer.report.build import Comparison, Leaderboard, LeaderboardRow, LineageStep, WrongExamples

__all__ = ["fmt_ci", "fmt_diff", "md_escape", "render_lineage", "render_markdown", "render_table",
           "render_wrong", "row_cells", "sources_text", "status_text"]

DASH = "—"
COLUMNS = ("task", "searcher", "target", "test acc [95% CI]", "Δ vs none [95% CI]", "Δ vs human [95% CI]",
           "dev acc", "seeds", "calls", "tokens", "cost", "wall", "status", "runs", "best prompt")


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


def row_cells(row: LeaderboardRow) -> list[str]:
    """The plain-text cells of one row, in :data:`COLUMNS` order."""
    b = row.best
    dev = b.dev.acc if b.dev else None
    runs = ", ".join(row.run_ids)
    return [
        row.task, row.searcher, row.target,
        fmt_ci(b.test.acc if b.test else None, b.test_ci), fmt_diff(b.vs_none), fmt_diff(b.vs_human),
        _num(dev), _seeds(row),
        DASH if row.calls is None else f"{row.calls:,}",
        DASH if row.tokens is None else f"{row.tokens:,}",
        DASH if row.cost_usd is None else f"${row.cost_usd:.4f}",
        DASH if row.wall_s is None else f"{row.wall_s:.0f} s",
        status_text(row), runs, b.best_text if b.best_text is not None else DASH,
    ]


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
            + f". Sorted by {lb.sort_order}. Calls, tokens, cost and wall time add up every run of a row.")


def render_table(lb: Leaderboard, console: Console) -> None:
    """Print the leaderboard as a rich table, each row's runs and best prompt under it, then any
    unreadable run folders."""
    table = Table(title="apo leaderboard", caption=_caption(lb), box=box.SIMPLE_HEAD, caption_justify="left",
                  collapse_padding=True)
    cols = ("#",) + COLUMNS[:-2]
    for col in cols:
        numeric = col not in ("task", "searcher", "target", "status")
        table.add_column(col.replace(" [", "\n["), overflow="fold", no_wrap=numeric, min_width=None if numeric else 6,
                         justify="right" if col in ("#", "calls", "tokens", "cost", "wall") else "left")
    for i, row in enumerate(lb.rows, 1):
        style = None if row.status == "complete" and not row.incomplete else "yellow"
        # intervals and the seed spread go on a second line, to fit common terminal widths
        cells = [c.replace(" [", "\n[").replace("; ", "\n") for c in row_cells(row)[:-2]]
        table.add_row(str(i), *[Text(c) for c in cells], style=style)
    console.print(table)
    for i, row in enumerate(lb.rows, 1):
        line = Text(f"#{i} ", style="bold")
        line.append(f"{', '.join(row.run_ids)}: ", style="dim")
        line.append(row.best.best_text if row.best.best_text is not None else DASH)
        console.print(line)
    for s in lb.skipped:
        console.print(Text(f"unreadable run {s.path}: {s.reason}", style="red"))


def md_escape(text: str) -> str:
    """Text safe inside a Markdown table cell: punctuation escaped, one line."""
    out = []
    for ch in " ".join(text.split()):
        out.append("\\" + ch if ch in "\\`*_[]<>|#~&!{}" else ch)
    return "".join(out)


def render_markdown(lb: Leaderboard) -> str:
    """The leaderboard as a GitHub-flavoured Markdown table (every run id listed)."""
    lines = ["# apo leaderboard", "", md_escape(_caption(lb)), "",
             "| " + " | ".join(COLUMNS) + " |", "|" + "|".join("---" for _ in COLUMNS) + "|"]
    text_cols = {"task", "searcher", "target", "seeds", "status", "runs", "best prompt"}
    for row in lb.rows:
        cells = [md_escape(c) if col in text_cols else c for col, c in zip(COLUMNS, row_cells(row))]
        lines.append("| " + " | ".join(cells) + " |")
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
        head = Text(f"{'  ' * i}{'└─ ' if i else ''}{s.id} {s.origin} (round {s.round}) dev {acc} on {s.dev.n}: ")
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
