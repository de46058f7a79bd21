"""Progress reporting. The engine talks to a :class:`Reporter`; the CLI passes a rich one."""

from __future__ import annotations

import sys
import threading
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # rich is imported only when a RichReporter is made
    from rich.progress import TaskID

__all__ = ["Reporter", "RichReporter"]


class Reporter:
    """Silent progress (the Python API's default). Subclass to show progress."""

    def started(self, run_id: str, run_dir: str, resumed: bool) -> None:
        """The job has its run folder."""

    def status(self, message: str) -> None:
        """A new phase has started."""

    def warning(self, message: str) -> None:
        """Something the user should know before the job goes on (written to stderr even by this silent reporter)."""
        print(f"warning: {message}", file=sys.stderr)

    def start_scoring(self, evaluator: Any, ledger: Any) -> None:
        """Hook the evaluator's per-batch callback (``evaluator.on_scored``); ``ledger`` has the spend so far."""

    def done(self) -> None:
        """The job is over."""


class RichReporter(Reporter):
    """A rich progress display: the current phase, examples scored, calls and tokens so far.

    On a terminal (or in a notebook) the display redraws in place. Written to a file or a pipe (a log of a job left
    running), where a redrawn display would show nothing until the end, it prints plain lines instead: the first
    phase at once, then every ``interval`` seconds the current phase, examples scored and spend (when any has
    changed), and a last line when the job is over.

    Args:
        console: a rich Console (stderr by default).
        interval: seconds between progress lines when the console is not a terminal.
    """

    def __init__(self, console=None, interval: float = 10.0) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        self.console = console or Console(stderr=True, markup=False, emoji=False, highlight=False)
        self.lines = not (self.console.is_terminal or self.console.is_jupyter)  # a notebook draws it live
        self.interval = interval
        self._begun = time.monotonic()
        self._message = ""
        self._scored = 0
        self._shown: tuple[str, int] | None = None  # the phase and count of the last line (lines mode)
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None
        self._lock = threading.Lock()
        self.progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}", style="bold", markup=False),
            BarColumn(),
            TextColumn("{task.completed} scored"),
            TextColumn("{task.fields[spend]}"),
            TimeElapsedColumn(),
            console=self.console,
            transient=False,
        )
        self.task_id: TaskID | None = None
        self.ledger: Any = None

    def _spend(self) -> str:
        if self.ledger is None:
            return ""
        ledger = self.ledger
        return f"calls {ledger.calls}  tokens {ledger.tokens}  ${ledger.cost:.4f}"

    def started(self, run_id: str, run_dir: str, resumed: bool) -> None:
        verb = "resuming" if resumed else "run"
        from rich.text import Text

        self.console.print(Text.assemble(f"{verb} ", (run_id, "bold"), f" in {run_dir} (interrupt any time; "
                                         f"`apo resume {run_id}` continues it)"), soft_wrap=self.lines)

    def warning(self, message: str) -> None:
        from rich.text import Text

        self.console.print(Text.assemble(("warning: ", "yellow"), message), soft_wrap=self.lines)

    def _line(self) -> None:
        """Write a progress line (lines mode) unless nothing has changed since the last one."""
        from rich.text import Text

        with self._lock:
            if self._shown == (self._message, self._scored):
                return
            self._shown = (self._message, self._scored)
            elapsed = int(time.monotonic() - self._begun)
            clock = f"{elapsed // 3600}:{elapsed // 60 % 60:02d}:{elapsed % 60:02d}"
            spend = self._spend()
            line = f"[{clock}] {self._message}  {self._scored} scored" + (f"  {spend}" if spend else "")
            self.console.print(Text(line), soft_wrap=True)

    def _tick(self) -> None:
        while not self._stop.wait(self.interval):
            self._line()

    def status(self, message: str) -> None:
        if self.lines:
            self._message = message
            if self._ticker is None:
                self._line()
                self._stop.clear()
                self._ticker = threading.Thread(target=self._tick, name="apo-progress", daemon=True)
                self._ticker.start()
            return
        if self.task_id is None:
            self.progress.start()
            self.task_id = self.progress.add_task(message, total=None, spend="")
        self.progress.update(self.task_id, description=message, spend=self._spend())

    def start_scoring(self, evaluator: Any, ledger: Any) -> None:
        self.ledger = ledger

        def advance(n: int) -> None:
            self._scored += n
            if not self.lines and self.task_id is not None:
                self.progress.update(self.task_id, advance=n, spend=self._spend())

        evaluator.on_scored = advance

    def done(self) -> None:
        if self.lines:
            self._stop.set()
            if self._ticker is not None:
                self._ticker.join()
                self._ticker = None
                self._line()
        if self.task_id is not None:
            self.progress.stop()
            self.task_id = None
