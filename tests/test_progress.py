"""The CLI's progress display written to a file or a pipe: plain lines, not a display redrawn only at the end."""

import io
import threading
import time

import pytest
from rich.console import Console

from optimizer.run.progress import RichReporter


class Ledger:
    calls, tokens, cost = 0, 0, 0.0


class Evaluator:
    on_scored = None


def reporter(interval: float) -> tuple[RichReporter, io.StringIO]:
    out = io.StringIO()
    return RichReporter(Console(file=out, width=60, markup=False, highlight=False), interval=interval), out


def test_a_log_gets_the_first_phase_at_once_then_lines_as_the_job_goes_and_a_last_one():
    rep, out = reporter(interval=0.05)
    assert rep.lines  # a StringIO is no terminal
    rep.started("20260101-000000-task-1", "/runs/a-very-long-folder-name-that-would-be-wrapped/at-sixty-columns", False)
    rep.status("loading models (embedded:smollm2-135m)")
    assert "] loading models (embedded:smollm2-135m)  0 scored" in out.getvalue()
    ev, ledger = Evaluator(), Ledger()
    rep.start_scoring(ev, ledger)
    rep.status("round 1: racing 13 candidates")
    ledger.calls, ledger.tokens = 7, 900
    ev.on_scored(5)
    deadline = time.monotonic() + 5
    while "5 scored" not in out.getvalue() and time.monotonic() < deadline:
        time.sleep(0.01)
    ev.on_scored(3)
    rep.done()
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("run 20260101-000000-task-1 in /runs/a-very-long")
    assert lines[0].endswith("at-sixty-columns (interrupt any time; `apo resume 20260101-000000-task-1` continues it)")
    assert any(line.endswith("round 1: racing 13 candidates  5 scored  calls 7  tokens 900  $0.0000") for line in lines)
    assert lines[-1].endswith("round 1: racing 13 candidates  8 scored  calls 7  tokens 900  $0.0000")
    assert all(line.startswith("[0:00:0") for line in lines[1:])
    assert not any(t.name == "apo-progress" for t in threading.enumerate())  # done() stopped the ticker


def test_nothing_new_writes_no_line_and_lines_come_no_faster_than_the_interval():
    rep, out = reporter(interval=3600)
    rep.status("scoring baselines on dev")
    for step in range(50):
        rep.status(f"prompt-tuning step {step}/50: loss 0.7")
    assert len(out.getvalue().splitlines()) == 1  # the first phase only: the next line is an interval away
    rep.done()
    lines = out.getvalue().splitlines()
    assert len(lines) == 2 and lines[-1].endswith("prompt-tuning step 49/50: loss 0.7  0 scored")
    rep.done()  # twice is harmless and adds nothing
    assert len(out.getvalue().splitlines()) == 2


@pytest.mark.filterwarnings("ignore:install \"ipywidgets\" for Jupyter support")  # rich's, outside a notebook
def test_a_terminal_and_a_notebook_keep_the_redrawn_display():
    for console in (Console(file=io.StringIO(), force_terminal=True, width=80),
                    Console(file=io.StringIO(), force_jupyter=True, width=80)):
        rep = RichReporter(console)
        assert not rep.lines
        rep.status("scoring baselines on dev")
        assert rep.task_id is not None
        rep.done()
        assert rep.task_id is None
