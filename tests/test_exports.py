"""The public API is a curated, sorted __all__; this pins it."""

import optimizer

EXPECTED = [
    "APEConfig", "ApoError", "AutoPromptConfig", "Budget", "BudgetExceeded", "Candidate", "CapabilityError",
    "EvalResult", "Example", "FakeModel", "ModelUnavailable", "RacingConfig", "RunConfig", "RunResult", "Score",
    "ScoredPrompt", "Task", "TaskError", "UsageError", "evaluate", "list_tasks", "load_task", "optimize",
    "register_fake", "resume",
]
EXPECTED += ["Leaderboard", "LeaderboardRow", "build_leaderboard"]  # leaderboard reports (optimizer.report.build)
EXPECTED += [  # optimizer.api
    "cache_stats", "clear_cache", "estimate", "list_models", "list_runs", "pull_model", "show_run",
]
EXPECTED += ["ScorerSetup", "SearchContext", "Searcher", "SearcherNote"]  # writing searchers (optimizer.run)
EXPECTED += ["DemosConfig", "JointConfig", "ReflectConfig", "SelectionConfig", "Selection"]  # searchers, what ships
EXPECTED += ["evaluate_run", "export_run"]  # the shipped prompt outside apo (optimizer.export)
EXPECTED += ["ApoClient"]  # jobs on an `apo serve` server (optimizer.service.client)
EXPECTED += ["SoftConfig"]  # prompt tuning, prefix tuning, P-tuning, LoRA (optimizer.settings)
EXPECTED += ["SweepResult", "sweep"]  # tasks x targets x searchers x seeds, local or on Ray (optimizer.service.sweep)
EXPECTED += ["LearningCurve", "compare", "learning_curves"]  # prompt or tune? (service.compare, report.curves)


def test_public_names_are_pinned():
    assert optimizer.__all__ == sorted(EXPECTED)
    for name in optimizer.__all__:
        assert getattr(optimizer, name) is not None


def test_every_config_field_is_documented():
    from optimizer.config import (
        APEConfig,
        AutoPromptConfig,
        Budget,
        DemosConfig,
        JointConfig,
        ReflectConfig,
        RunConfig,
        SelectionConfig,
        SoftConfig,
    )

    for model in (APEConfig, AutoPromptConfig, Budget, RunConfig, DemosConfig, JointConfig, ReflectConfig,
                  SelectionConfig, SoftConfig):
        for name, field in model.model_fields.items():
            assert field.description, f"{model.__name__}.{name} has no docstring"


def test_public_functions_are_not_shadowed_by_submodules():
    import optimizer.run.engine  # noqa: F401  (imports every submodule the engine uses)

    for name in ("evaluate", "optimize", "resume", "load_task", "list_tasks", "estimate", "list_runs", "show_run"):
        assert callable(getattr(optimizer, name)) and not isinstance(getattr(optimizer, name), type(optimizer))


def test_api_names_are_sorted_and_documented():
    import inspect

    import optimizer.api

    assert optimizer.api.__all__ == sorted(optimizer.api.__all__)
    for name in optimizer.api.__all__:
        obj = getattr(optimizer.api, name)
        if inspect.isfunction(obj):
            doc = inspect.getdoc(obj) or ""
            returns_none = inspect.signature(obj).return_annotation in (None, "None")
            assert "Returns:" in doc or returns_none, f"{name} documents no return value"
            if inspect.signature(obj).parameters:
                assert "Args:" in doc, f"{name} documents no arguments"
        elif obj.__module__ in ("optimizer.api", "optimizer.resources"):  # models defined here, not re-exported
            for field, info in obj.model_fields.items():
                assert info.description, f"{name}.{field} has no docstring"


def test_optimize_declares_its_return_type():
    import optimizer
    import optimizer.api

    for function in (optimizer.optimize, optimizer.resume):
        assert eval(function.__annotations__["return"], vars(optimizer.api)) is optimizer.RunResult
