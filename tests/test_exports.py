"""The public API is a curated, sorted __all__; this pins it."""

import optimizer

EXPECTED = [
    "APEConfig", "ApoError", "AutoPromptConfig", "Budget", "BudgetExceeded", "Candidate", "CapabilityError", "EvalResult",
    "Example", "FakeModel", "ModelUnavailable", "RacingConfig", "RunConfig", "RunResult", "Score", "ScoredPrompt", "Task", "TaskError",
    "UsageError", "evaluate", "list_tasks", "load_task", "optimize", "register_fake", "resume",
]
EXPECTED += ["Leaderboard", "LeaderboardRow", "build_leaderboard"]  # leaderboard reports (optimizer.report.build)


def test_public_names_are_pinned():
    assert optimizer.__all__ == sorted(EXPECTED)
    for name in optimizer.__all__:
        assert getattr(optimizer, name) is not None


def test_every_config_field_is_documented():
    from optimizer.config import APEConfig, AutoPromptConfig, Budget, RunConfig

    for model in (APEConfig, AutoPromptConfig, Budget, RunConfig):
        for name, field in model.model_fields.items():
            assert field.description, f"{model.__name__}.{name} has no docstring"


def test_public_functions_are_not_shadowed_by_submodules():
    import optimizer.run.engine  # noqa: F401  (imports every submodule the engine uses)

    for name in ("evaluate", "optimize", "resume", "load_task", "list_tasks"):
        assert callable(getattr(optimizer, name)) and not isinstance(getattr(optimizer, name), type(optimizer))
