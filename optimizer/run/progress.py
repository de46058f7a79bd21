"""Progress reporting. The engine talks to a :class:`Reporter`; the CLI passes a rich one."""

from __future__ import annotations

import sys
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

    Args:
        console: a rich Console (stderr by default).
    """

    def __init__(self, console=None) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        self.console = console or Console(stderr=True, markup=False, emoji=False, highlight=False)
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
                                         f"`apo resume {run_id}` continues it)"))

    def warning(self, message: str) -> None:
        from rich.text import Text

        self.console.print(Text.assemble(("warning: ", "yellow"), message))

    def status(self, message: str) -> None:
        if self.task_id is None:
            self.progress.start()
            self.task_id = self.progress.add_task(message, total=None, spend="")
        self.progress.update(self.task_id, description=message, spend=self._spend())

    def start_scoring(self, evaluator: Any, ledger: Any) -> None:
        self.ledger = ledger

        def advance(n: int) -> None:
            if self.task_id is not None:
                self.progress.update(self.task_id, advance=n, spend=self._spend())

        evaluator.on_scored = advance

    def done(self) -> None:
        if self.task_id is not None:
            self.progress.stop()
            self.task_id = None
