"""The ``baseline`` searcher: no search. The run scores its baselines (no instruction, the task's human
instructions raced, the incumbent), confirms nothing and ships the incumbent: what k-shot prompting gives
without optimization, the reference row of a comparison (``apo compare``).

On a masked LM, and on a causal LM for a classification task whose human instructions are cloze templates
(``sst2``), the prompts are the task's manual ``[P]`` templates, scored through the label words as AutoPrompt
scores them; elsewhere instructions, through the execution template with the run's demonstrations.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from optimizer.models.base import WHITEBOX
from optimizer.settings import AutoPromptConfig

if TYPE_CHECKING:
    from optimizer.run.context import ScorerSetup, SearchContext

__all__ = ["BaselineSearch"]


class BaselineSearch:
    """No search: the incumbent ships.

    Args:
        cloze: AutoPrompt's parameters (the cloze template and label words used on a masked LM).
    """

    name = "baseline"
    requires: frozenset[str] = frozenset()

    def __init__(self, cloze: AutoPromptConfig | None = None) -> None:
        self.cloze = cloze or AutoPromptConfig()

    def build_scorer(self, setup: ScorerSetup) -> Any:
        """The instruction scorer, or where the model reads the task through a cloze template AutoPrompt's cloze
        scorer."""
        from optimizer.run.engine import instruction_scorer
        from optimizer.tasks.cloze import reads_cloze

        task = setup.task
        if WHITEBOX in setup.target.adapter.capabilities and reads_cloze(setup.target.whitebox().kind, task.labels,
                                                                         task.instructions):
            from optimizer.search.autoprompt.search import AutoPromptSearch

            return AutoPromptSearch(self.cloze).build_scorer(setup)
        return instruction_scorer(setup.config, setup.task, setup.target)

    def run(self, ctx: SearchContext) -> None:
        """Nothing to search: the engine has scored the baselines and set the incumbent."""
        ctx.status("baseline: no search")
