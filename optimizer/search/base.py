"""The searcher protocol: strategies propose candidates and observe scores through a context.

Searchers never open files, call models directly or own retries: the engine's
:class:`~optimizer.run.engine.SearchContext` does that, journals every result and enforces the budget.

Example:
    A searcher that only tries the task's own instructions::

        class HumanOnly:
            name = "human"
            requires = frozenset({"generate"})

            def run(self, ctx):
                ctx.race(ctx.add_candidates(ctx.task.instructions, origin="human"), round=0)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from optimizer.run.engine import SearchContext

__all__ = ["Searcher"]


class Searcher(Protocol):
    """A search strategy."""

    name: str
    """The name used on the command line (``--searcher NAME``)."""
    requires: frozenset[str]
    """Capabilities the target must have (see optimizer.models.base)."""

    def run(self, ctx: "SearchContext") -> None:
        """Search until done; may be interrupted by BudgetExceeded at any model call."""
        ...

    # Optional: ``prepare(ctx)``, called by the engine before any scoring, may replace
    # ``ctx.evaluator`` with one that scores the searcher's kind of prompt (AutoPrompt scores
    # cloze prompts through a white-box model); it must keep Evaluator.score's interface.
