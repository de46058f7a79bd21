"""The leaderboard's data: pydantic models returned by :func:`optimizer.report.build.build_leaderboard`."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

from optimizer.types import Candidate, Score, Selection

__all__ = ["Comparison", "Leaderboard", "LeaderboardRow", "LineageStep", "RunSummary", "SORT_ORDER", "SeedSpread",
           "SkippedRun", "WrongExample", "WrongExamples"]

SORT_ORDER = ("task (A→Z), then test accuracy of the best prompt (highest first; rows without a test "
              "score last), then searcher, then target model")
"""The documented, stable order of leaderboard rows."""

_MODEL = ConfigDict(use_attribute_docstrings=True)


class Comparison(BaseModel):
    """The best prompt against a baseline of the same run, on the same test examples."""

    model_config = _MODEL

    baseline: Literal["no_instruction", "best_human", "incumbent", "best"]
    """Which baseline: its row name in ``result.json`` (``incumbent``: the user's initial prompt; ``best``: the
    incumbent shipped, so the comparison is with itself)."""
    text: str
    """The baseline's instruction ("" for none)."""
    test_acc: float | None
    """The baseline's test accuracy."""
    diff: float | None
    """Mean paired difference, best minus baseline, of test accuracy."""
    ci: tuple[float, float] | None
    """Paired bootstrap 95% interval of ``diff`` (None without per-example scores)."""
    n: int
    """Test examples compared."""


class LineageStep(BaseModel):
    """One candidate on the path from a proposal to the winner."""

    model_config = _MODEL

    id: str
    """Candidate id."""
    text: str
    """Its instruction."""
    origin: str
    """``forward`` (proposed from demonstrations), ``variation``, ``human`` …"""
    round: int
    """Search round that produced it."""
    dev: Score
    """Its dev score."""
    demos: tuple[str, ...] | None = None
    """Training example ids shown as its demonstrations, in order (None: the run's fixed demonstrations)."""
    diff: list[tuple[Literal["same", "add", "del"], str]] = []
    """Word differences from the previous step (empty for the first)."""


class SeedSpread(BaseModel):
    """Test accuracy of one configuration over several seeds."""

    model_config = _MODEL

    n: int
    """Seeds (runs with a test score)."""
    mean: float
    """Mean test accuracy of each seed's best prompt."""
    sd: float
    """Sample standard deviation over seeds."""
    min: float
    """Lowest."""
    max: float
    """Highest."""


class RunSummary(BaseModel):
    """One run as the leaderboard sees it."""

    model_config = _MODEL

    run_id: str
    """The run folder's name."""
    run_dir: str
    """The run folder."""
    task: str
    """Task name."""
    searcher: str
    """Search strategy (``config.searcher``)."""
    target: str
    """Target model."""
    proposer: str
    """Proposer model."""
    seed: int
    """Run seed."""
    scoring: str
    """``accuracy`` or ``logprob``: how candidates were ranked on dev."""
    configuration: str
    """Fingerprint of the configuration apart from the seed (runs that differ only by seed share it)."""
    status: Literal["complete", "partial", "interrupted", "running"]
    """``interrupted``: stopped by Ctrl-C, or no result.json (killed; ``apo resume`` finishes it); ``running``: no
    result.json yet and a process holds the run's lock."""
    stop_reason: str | None = None
    """Why a partial run stopped."""
    best_text: str | None = None
    """The run's shipped instruction (``result.best``; the best raced candidate of an interrupted run)."""
    best_candidate: str | None = None
    """Its candidate id."""
    dev: Score | None = None
    """Its dev score."""
    test: Score | None = None
    """Its test score (None when the test evaluation did not happen)."""
    test_ci: tuple[float, float] | None = None
    """Bootstrap 95% interval of its test accuracy."""
    vs_none: Comparison | None = None
    """Paired comparison with no instruction."""
    vs_human: Comparison | None = None
    """Paired comparison with the best human instruction (chosen on dev)."""
    verdict: str | None = None
    """``selection.verdict``: ``improved`` (a finalist beat the incumbent on the confirmation examples), ``no
    significant improvement`` (the incumbent ships), ``shorter, not significantly worse``, ``not tested``; None
    for a run made before incumbents."""
    selection: Selection | None = None
    """How the shipped prompt was chosen: the incumbent and its origin, each finalist's p-values, the sizes."""
    vs_incumbent: Comparison | None = None
    """Paired comparison of the shipped prompt with the incumbent on test (zero when the incumbent shipped)."""
    demos: tuple[str, ...] | None = None
    """Training example ids the shipped prompt shows as demonstrations, in order (None: the run's fixed ones)."""
    demos_k: int | None = None
    """How many demonstrations the shipped prompt shows (None when the run did not record them)."""
    prompt_tokens: int | None = None
    """Tokens of the shipped prompt's fixed part (instruction and demonstrations) under the target's tokenizer
    (None for runs written before prompt lengths were recorded)."""
    tokens_per_example: float | None = None
    """Mean tokens the target reads per test example with the shipped prompt (fixed part, input and answer cue)."""
    trainable_params: int = 0
    """Parameters the shipped prompt trained (a trained searcher's adapter; 0 for a written prompt)."""
    train_examples: int | None = None
    """Training examples the search could use (demonstrations, proposals, failures; the adapter's training set);
    None for runs written before it was recorded."""
    train_limit: int | None = None
    """The run's ``train_limit`` (None: the whole train split); runs with different limits are different rows."""
    train_s: float | None = None
    """Seconds spent training, up to the shipped checkpoint (None for a written prompt)."""
    pareto: list[str] | None = None
    """Candidate ids on the dev accuracy × prompt-tokens Pareto front, shortest first (``result.pareto``; None for
    runs written before it was recorded)."""
    calls: int | None = None
    """Provider calls (None where the run recorded none)."""
    tokens: int | None = None
    """Prompt plus completion tokens."""
    cost_usd: float | None = None
    """Estimated dollars (None for runs written before costs were recorded)."""
    wall_s: float | None = None
    """Seconds the job ran (search and test)."""
    candidates: list[Candidate] = []
    """Every searched candidate with its dev score, best first."""
    trajectory: list[tuple[int, float]] = []
    """(model calls so far, best dev accuracy so far on the full dev set) after each racing rung."""


class LeaderboardRow(BaseModel):
    """The best prompt for one (task, searcher, target model, training limit)."""

    model_config = _MODEL

    task: str
    """Task name."""
    searcher: str
    """Search strategy."""
    target: str
    """Target model."""
    status: Literal["complete", "partial", "interrupted", "running"]
    """The winning run's status (``interrupted`` or ``running`` when no run of the row finished)."""
    incomplete: list[str] = []
    """Run ids of the row that are partial or interrupted."""
    best: RunSummary
    """The winning run (best dev score among finished runs)."""
    seeds: list[int]
    """Seeds of every run in the row."""
    run_ids: list[str]
    """Every run in the row, the winner first."""
    seed_spread: SeedSpread | None = None
    """Test accuracy over the seeds of the winner's configuration (two or more seeds)."""
    calls: int | None = None
    """Provider calls over every run of the row (None if any run lacks the figure)."""
    tokens: int | None = None
    """Tokens over every run of the row."""
    cost_usd: float | None = None
    """Estimated dollars over every run of the row (None if any run lacks it)."""
    wall_s: float | None = None
    """Seconds over every run of the row."""
    lineage: list[LineageStep] = []
    """From the first proposal to the winner, with word differences."""
    runs: list[RunSummary] = []
    """Every run of the row, the winner first."""


class SkippedRun(BaseModel):
    """A folder that looked like a run but could not be read."""

    model_config = _MODEL

    path: str
    """The folder."""
    reason: str
    """What was wrong."""


class Leaderboard(BaseModel):
    """Rows in :data:`SORT_ORDER`, with the filters that chose them."""

    model_config = _MODEL

    sources: list[str]
    """The folders read."""
    filters: dict[str, list[str]] = {}
    """``task``/``searcher``/``model`` filters applied (empty: none)."""
    sort_order: str = SORT_ORDER
    """How rows are ordered."""
    rows: list[LeaderboardRow]
    """One per (task, searcher, target)."""
    skipped: list[SkippedRun] = []
    """Folders with a config.json that could not be read (shown, not dropped silently)."""


class WrongExample(BaseModel):
    """A test example the best prompt got wrong."""

    model_config = _MODEL

    id: str
    """The example's id in the test split."""
    input: str | None = None
    """Its input (None when the task could not be loaded)."""
    gold: str | None = None
    """Its gold output (None when the task could not be loaded)."""
    output: str | None = None
    """What the target answered."""
    score: float
    """Metric score of that answer (below 1)."""
    error: str | None = None
    """Why scoring failed, if it did."""


class WrongExamples(BaseModel):
    """The test examples a run's best prompt gets wrong."""

    model_config = _MODEL

    prompt: str
    """The best prompt."""
    n_test: int
    """Test examples scored for it."""
    wrong: list[WrongExample]
    """Those scoring below 1, in test order."""
    note: str | None = None
    """Why inputs and gold outputs are missing, when they are."""
