"""apo: automatic prompt optimization.

An LLM proposes instructions from a few demonstrations, a target model executes each on
held-out examples, and the best are refined again and again (APE). Use the ``apo`` command,
or from Python::

    from optimizer import optimize
    result = optimize("capitalize_words", target="embedded", rounds=1)
    print(result.best.text, result.best.test.acc)

    result = optimize(config="job.yaml", max_calls=200)  # a job file, options overriding it

    from optimizer import build_leaderboard
    for row in build_leaderboard("runs").rows:          # the best prompt per (task, searcher, target)
        print(row.task, row.target, row.best.test.acc, row.best.test_ci, row.best.best_text)
"""

from optimizer.api import (
    EvalResult,
    cache_stats,
    clear_cache,
    estimate,
    evaluate,
    list_models,
    list_runs,
    optimize,
    pull_model,
    resume,
    show_run,
)
from optimizer.config import APEConfig, AutoPromptConfig, Budget, RacingConfig, RunConfig
from optimizer.errors import ApoError, BudgetExceeded, CapabilityError, ModelUnavailable, TaskError, UsageError
from optimizer.models.providers.fake import FakeModel, register_fake
from optimizer.report.build import Leaderboard, LeaderboardRow, build_leaderboard
from optimizer.run.context import ScorerSetup, SearchContext, Searcher
from optimizer.run.events import SearcherNote
from optimizer.tasks.task import Task, list_tasks, load_task
from optimizer.types import Candidate, Example, RunResult, Score, ScoredPrompt

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
    "ScorerSetup",
    "SearchContext",
    "Searcher",
    "SearcherNote",
    "Task",
    "TaskError",
    "UsageError",
    "build_leaderboard",
    "cache_stats",
    "clear_cache",
    "estimate",
    "evaluate",
    "list_models",
    "list_runs",
    "list_tasks",
    "load_task",
    "optimize",
    "pull_model",
    "register_fake",
    "resume",
    "show_run",
]
