"""apo: automatic prompt optimization.

An LLM proposes instructions from a few demonstrations, a target model executes each on
held-out examples, and the best are refined again and again (APE). Use the ``apo`` command,
or from Python::

    from optimizer import optimize
    result = optimize("capitalize_words", target="embedded", rounds=1)
    print(result.best.text, result.best.test.acc)

    from optimizer import build_leaderboard
    for row in build_leaderboard("runs").rows:          # the best prompt per (task, searcher, target)
        print(row.task, row.target, row.best.test.acc, row.best.test_ci, row.best.best_text)
"""

from optimizer.api import EvalResult, evaluate, optimize
from optimizer.models.providers.fake import FakeModel, register_fake
from optimizer.config import APEConfig, AutoPromptConfig, Budget, RacingConfig, RunConfig
from optimizer.errors import ApoError, BudgetExceeded, CapabilityError, ModelUnavailable, TaskError, UsageError
from optimizer.report.build import Leaderboard, LeaderboardRow, build_leaderboard
from optimizer.tasks.task import Task, list_tasks, load_task
from optimizer.types import Candidate, Score, Example, RunResult, ScoredPrompt

__all__ = [
    "APEConfig",
    "ApoError",
    "AutoPromptConfig",
    "Budget",
    "BudgetExceeded",
    "Candidate",
    "CapabilityError",
    "EvalResult",
    "Example",
    "FakeModel",
    "Leaderboard",
    "LeaderboardRow",
    "ModelUnavailable",
    "RacingConfig",
    "RunConfig",
    "RunResult",
    "Score",
    "ScoredPrompt",
    "Task",
    "TaskError",
    "UsageError",
    "build_leaderboard",
    "evaluate",
    "list_tasks",
    "load_task",
    "optimize",
    "register_fake",
    "resume",
]


def resume(run_id: str, *, runs_dir=None, progress: bool = False) -> RunResult:
    """Continue a stopped job without recomputing any recorded score (see ``apo resume``).

    Args:
        run_id: the run id or folder.
        runs_dir: the runs folder (default ``$APO_RUNS_DIR`` or ``./runs``).
        progress: show a rich progress display on stderr.

    Returns:
        The finished result.
    """
    from optimizer.run.engine import resume as _resume
    from optimizer.run.progress import Reporter, RichReporter

    return _resume(run_id, runs_dir=runs_dir, reporter=RichReporter() if progress else Reporter())
