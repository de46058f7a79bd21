"""apo: automatic prompt optimization.

An LLM proposes instructions from a few demonstrations, a target model executes each on
held-out examples, and the best are refined again and again (APE); other searchers choose the
demonstrations (``demos``), search both jointly (``joint``) or rewrite from failures
(``reflect``). A prompt ships only when it beats the incumbent (your prompt, else the best human
one) significantly on held-out examples. Use the ``apo`` command, or from Python::

    from optimizer import optimize
    result = optimize("capitalize_words", target="embedded", rounds=1, initial_prompt="Capitalize it.")
    print(result.best.text, result.best.test.acc, result.selection.verdict)

    result = optimize(config="job.yaml", max_calls=200)  # a job file, options overriding it

    from optimizer import build_leaderboard
    for row in build_leaderboard("runs").rows:          # the best prompt per (task, searcher, target)
        print(row.task, row.target, row.best.test.acc, row.best.test_ci, row.best.best_text)

    from optimizer import ApoClient                      # jobs on an `apo serve` server
    client = ApoClient("http://127.0.0.1:8765", token)
    job = client.submit("capitalize_words", target="fake:upper", rounds=1)
    print(client.wait(job, timeout=600)["state"], client.result(job)["best"]["text"])

    from optimizer import sweep                          # a sweep file's jobs, local processes or Ray
    result = sweep("nightly.yaml", executor="local", workers=2)
    print([o.state for o in result.outcomes], result.report)

    from optimizer import compare, learning_curves       # prompt or tune? every method at 8, 32, 128, all examples
    result = compare("capitalize_words", sizes=[8, 32, None], max_calls=60_000)
    for curve in learning_curves(result.leaderboard):  # test accuracy by training size, per method
        print(curve.sizes, {m: [p.acc for p in pts] for m, pts in curve.lines.items()})
"""

from optimizer.api import (
    EvalResult,
    cache_stats,
    clear_cache,
    estimate,
    evaluate,
    evaluate_run,
    export_run,
    list_models,
    list_runs,
    optimize,
    pull_model,
    resume,
    show_run,
)
from optimizer.config import (
    APEConfig,
    AutoPromptConfig,
    Budget,
    DemosConfig,
    JointConfig,
    RacingConfig,
    ReflectConfig,
    RunConfig,
    SelectionConfig,
    SoftConfig,
)
from optimizer.errors import ApoError, BudgetExceeded, CapabilityError, ModelUnavailable, TaskError, UsageError
from optimizer.models.providers.fake import FakeModel, register_fake
from optimizer.report.build import Leaderboard, LeaderboardRow, build_leaderboard
from optimizer.report.curves import LearningCurve, learning_curves
from optimizer.run.context import ScorerSetup, SearchContext, Searcher
from optimizer.run.events import SearcherNote
from optimizer.service.client import ApoClient
from optimizer.service.compare import compare
from optimizer.service.sweep import SweepResult, sweep
from optimizer.tasks.task import Task, list_tasks, load_task
from optimizer.types import Candidate, Example, RunResult, Score, ScoredPrompt, Selection

__all__ = [
    "APEConfig",
    "ApoClient",
    "ApoError",
    "AutoPromptConfig",
    "Budget",
    "BudgetExceeded",
    "Candidate",
    "CapabilityError",
    "DemosConfig",
    "EvalResult",
    "Example",
    "FakeModel",
    "JointConfig",
    "Leaderboard",
    "LeaderboardRow",
    "LearningCurve",
    "ModelUnavailable",
    "RacingConfig",
    "ReflectConfig",
    "RunConfig",
    "RunResult",
    "Score",
    "ScoredPrompt",
    "ScorerSetup",
    "SearchContext",
    "Searcher",
    "SearcherNote",
    "Selection",
    "SelectionConfig",
    "SoftConfig",
    "SweepResult",
    "Task",
    "TaskError",
    "UsageError",
    "build_leaderboard",
    "cache_stats",
    "clear_cache",
    "compare",
    "estimate",
    "evaluate",
    "evaluate_run",
    "export_run",
    "learning_curves",
    "list_models",
    "list_runs",
    "list_tasks",
    "load_task",
    "optimize",
    "pull_model",
    "register_fake",
    "resume",
    "show_run",
    "sweep",
]
