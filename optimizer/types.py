"""Data types shared across apo: examples, requests to models and their answers, candidates, scores."""

from __future__ import annotations

import json
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "Candidate",
    "Selection",
    "INCUMBENT_KINDS",
    "FinalistTest",
    "prompt_key",
    "split_prompt_key",
    "Score",
    "RunResult",
    "ScoredPrompt",
    "Example",
    "Generation",
    "GenerateRequest",
    "LogprobRequest",
    "LogprobResult",
    "Message",
]


class Example(BaseModel):
    """One task example: an input, its gold output and optional accepted alternatives."""

    model_config = ConfigDict(frozen=True, use_attribute_docstrings=True)

    input: str
    """The input text shown to the model."""
    output: str
    """The gold output."""
    alternatives: tuple[str, ...] = ()
    """Other outputs that also count as correct (e.g. several valid translations)."""
    id: str = ""
    """A stable identifier inside its split (defaults to the position)."""

    @property
    def answers(self) -> tuple[str, ...]:
        """The gold output followed by every accepted alternative."""
        return (self.output, *[a for a in self.alternatives if a != self.output])


class Message(BaseModel):
    """One chat message."""

    model_config = ConfigDict(frozen=True, use_attribute_docstrings=True)

    role: Literal["system", "user", "assistant"]
    """Who speaks."""
    content: str
    """What is said."""


class GenerateRequest(BaseModel):
    """A request for one sampled completion.

    Either ``prompt`` (completion style) or ``messages`` (chat style) is set. ``sample_index``
    distinguishes repeated samples of the same request so that caches keep them apart.
    """

    model_config = ConfigDict(frozen=True, use_attribute_docstrings=True)

    prompt: str | None = None
    """Raw text to continue (completion style)."""
    messages: tuple[Message, ...] | None = None
    """Chat messages (chat style); the adapter applies the model's chat template."""
    max_tokens: int = Field(default=64, ge=1)
    """Maximum number of new tokens."""
    temperature: float = Field(default=0.0, ge=0.0)
    """Sampling temperature; 0 means greedy."""
    stop: tuple[str, ...] = ()
    """Strings that end the completion; the stop string itself is not returned."""
    seed: int | None = None
    """Sampling seed, for providers and local models that honour one."""
    sample_index: int = 0
    """Which of several samples of the same request this is."""

    def model_post_init(self, __context: object) -> None:  # noqa: D401
        if (self.prompt is None) == (self.messages is None):
            raise ValueError("GenerateRequest needs exactly one of prompt or messages")


class Generation(BaseModel):
    """The answer to a GenerateRequest."""

    text: str
    """The generated text, cut at the first stop string."""
    prompt_tokens: int = 0
    """Tokens in the prompt as the provider counted them."""
    completion_tokens: int = 0
    """Tokens generated."""
    cached: bool = False
    """Whether this came from the response cache (costs nothing)."""


class LogprobRequest(BaseModel):
    """Log-probability of ``continuation`` given ``context`` (lm-eval's loglikelihood)."""

    model_config = ConfigDict(frozen=True, use_attribute_docstrings=True)

    context: str
    """The text the model conditions on."""
    continuation: str
    """The text whose log-probability is wanted."""


class LogprobResult(BaseModel):
    """The answer to a LogprobRequest."""

    logprob: float
    """Sum of the continuation tokens' log-probabilities (natural log)."""
    n_tokens: int
    """Number of continuation tokens."""
    is_greedy: bool = False
    """Whether greedy decoding would have produced exactly the continuation."""
    exact: bool = True
    """False when the provider could only bound the value from above (API models scored from
    generated-token log-probabilities whose path leaves the continuation early)."""
    prompt_tokens: int = 0
    """Tokens processed (context plus continuation)."""
    cached: bool = False
    """Whether this came from the response cache."""


class Score(BaseModel):
    """Mean scores of one prompt on a set of examples (dev or test)."""

    acc: float | None = None
    """Mean metric score (execution accuracy)."""
    lp: float | None = None
    """Mean log-probability of the gold output."""
    n: int = 0
    """Examples behind the means."""


_DEMOS_MARK = "\x1edemos="


def prompt_key(instruction: str, demos: tuple[str, ...] | list[str] | None = None) -> str:
    """The text that identifies a prompt in the journal: the instruction, plus its demonstrations when it has its own.

    A prompt with the run's fixed demonstrations (``demos`` None) is keyed by its instruction alone, so runs
    written before prompts carried demonstrations keep their keys.

    Args:
        instruction: the instruction ("" for none).
        demos: ids of training examples shown as demonstrations, in order (None: the run's own).

    Returns:
        The key.
    """
    return instruction if demos is None else f"{instruction}{_DEMOS_MARK}{json.dumps(list(demos))}"


def split_prompt_key(key: str) -> tuple[str, tuple[str, ...] | None]:
    """The instruction and demonstration ids of a key made by :func:`prompt_key`."""
    instruction, mark, demos = key.partition(_DEMOS_MARK)
    return (instruction, tuple(json.loads(demos))) if mark else (key, None)


class Candidate(BaseModel):
    """A prompt met during a search, with where it came from and its best-known dev score.

    A prompt is an instruction plus demonstrations: ``demos`` names training examples by id, in the
    order shown (None: the run's fixed demonstrations, drawn from train with the run seed).
    """

    id: str
    """Run-local id (``c000``…; ``h…`` for the task's human instructions)."""
    text: str
    """The instruction."""
    origin: str
    """``initial`` (the user's prompt), ``human``, ``none`` (no instruction as the incumbent), ``forward``
    (proposed from demonstrations), ``variation``, ``demos`` (a demonstration set), ``reflection`` …"""
    parent: str | None = None
    """The id of the candidate this one varies."""
    round: int = 0
    """Search round that produced it."""
    demos: tuple[str, ...] | None = None
    """Training example ids shown as demonstrations, in order (None: the run's fixed demonstrations)."""
    dev: Score = Field(default_factory=Score)
    """Its dev score with the most examples evaluated."""
    prompt_tokens: int | None = None
    """Tokens of its fixed part (instruction and demonstrations) under the target's tokenizer (about 4
    characters a token for models whose tokenizer is not at hand)."""

    @property
    def key(self) -> str:
        """The prompt's journal key (see :func:`prompt_key`)."""
        return prompt_key(self.text, self.demos)


class ScoredPrompt(BaseModel):
    """A prompt in the final report, with dev and test scores."""

    name: str
    """``best``, ``no_instruction`` or ``best_human``."""
    text: str
    """The instruction ("" for none)."""
    candidate: str | None = None
    """The candidate id."""
    demos: tuple[str, ...] | None = None
    """Training example ids shown as demonstrations, in order (None: the run's fixed demonstrations)."""
    demo_examples: list[Example] = []
    """The demonstrations as the target saw them, in order."""
    dev: Score = Field(default_factory=Score)
    """Score on the dev examples used for racing."""
    confirm: Score | None = None
    """Score on the confirmation examples (finalists and the incumbent)."""
    prompt_tokens: int | None = None
    """Tokens of the fixed part of the prompt (instruction and demonstrations)."""
    tokens_per_example: float | None = None
    """Mean tokens the target reads per test example (the fixed part, the input and the answer cue)."""
    test: Score | None = None
    """Score on the test split (None when the budget ran out first)."""
    test_acc: list[float] = []
    """Per-example test metric scores, in test order (for confidence intervals)."""
    test_lp: list[float] = []
    """Per-example test gold log-probabilities, in test order."""
    adapter: str | None = None
    """A trained adapter's folder in the run folder (``adapter/step-00100``; None for a text prompt)."""


class FinalistTest(BaseModel):
    """One finalist against the incumbent on the confirmation examples."""

    candidate: str
    """The finalist's candidate id."""
    confirm: Score
    """Its score on the confirmation examples."""
    diff: float
    """Mean paired difference from the incumbent (finalist minus incumbent)."""
    p_value: float
    """One-sided p-value of "the finalist is better" (paired sign-flip permutation test)."""
    p_adjusted: float
    """Adjusted for the number of finalists (step-down max-T; Holm in runs made before it)."""
    significant: bool
    """Whether ``p_adjusted`` is below alpha."""


INCUMBENT_KINDS = {"initial": "the initial prompt", "human": "the best human instruction", "none": "no instruction"}
"""What each ``Selection.incumbent_origin`` is, in words."""


class Selection(BaseModel):
    """The decision of which prompt ships, with its evidence."""

    verdict: Literal["improved", "no significant improvement", "shorter, not significantly worse", "not tested"]
    """``improved``: a finalist beat the incumbent; ``no significant improvement``: the incumbent ships;
    ``shorter, not significantly worse`` (with ``prefer shorter``): a shorter prompt that is not significantly
    worse than the winner ships; ``not tested``: confirmation was off (the best on dev ships) or the budget ended
    first (the incumbent ships)."""
    prefer: Literal["instruction", "accuracy", "shorter"] = "accuracy"
    """What decided among prompts that are not significantly different (runs made before ``instruction`` existed
    read as ``accuracy``)."""
    incumbent: str | None = None
    """The incumbent's candidate id."""
    incumbent_origin: str | None = None
    """``initial`` (the user's prompt), ``human`` (best human instruction on dev) or ``none`` (no instruction)."""
    shipped: str | None = None
    """The shipped prompt's candidate id."""
    test: str = ""
    """The statistical test used."""
    alpha: float = 0.05
    """Significance level."""
    score: Literal["accuracy", "logprob"] = "accuracy"
    """The per-example score compared."""
    incumbent_confirm: Score | None = None
    """The incumbent's score on the confirmation examples."""
    finalists: list[FinalistTest] = []
    """Each finalist's comparison."""
    sizes: dict[str, int] = {}
    """Examples in each part: ``dev`` (racing), ``confirm``, ``test``."""
    note: str | None = None
    """Why the verdict is what it is, when not plain."""


class RunResult(BaseModel):
    """What a job found; stored as ``runs/<id>/result.json``."""

    run_id: str
    """The run's folder name."""
    run_dir: str
    """The run's folder."""
    task: str
    """Task name."""
    searcher: str
    """Search strategy."""
    target: str
    """Target model id."""
    proposer: str
    """Proposer model id."""
    seed: int
    """Run seed."""
    status: Literal["complete", "partial", "interrupted"]
    """``partial`` when the budget stopped the search or the test evaluation; ``interrupted`` when a Ctrl-C did
    (what was scored so far; ``apo resume`` finishes the run)."""
    stop_reason: str | None = None
    """Why a partial run stopped."""
    best: ScoredPrompt | None = None
    """The prompt to ship: a finalist that beat the incumbent significantly on the confirmation examples, else
    the incumbent (see ``selection``)."""
    baselines: list[ScoredPrompt] = []
    """The incumbent, no instruction, the best human instruction by dev score, and the best on dev when it was
    not shipped."""
    selection: Selection | None = None
    """How ``best`` was chosen: the verdict, the test, p-values and sizes."""
    pareto: list[str] = []
    """Candidates on the accuracy × prompt-tokens Pareto front (dev accuracy over the raced dev examples; none
    is both more accurate and shorter), shortest first."""
    human: list[Candidate] = []
    """Every human/seed instruction with its dev score (raced like the candidates)."""
    candidates: list[Candidate] = []
    """Every searched candidate, best first."""
    usage: dict[str, dict] = {}
    """Usage per role (calls, cache hits, tokens, seconds)."""
    calls: int = 0
    """Provider calls over every role."""
    tokens: int = 0
    """Prompt plus completion tokens over every role."""
    cost_usd: float = 0.0
    """Estimated dollars over every role (0 for local models)."""
    timings: dict[str, float] = {}
    """Seconds per phase (search, test, total)."""
    multiline_answers: bool = False
    """Whether the task's answers span lines: the target's answer then ran to a blank line instead of the first
    newline, and was scored whole."""

    def incumbent_prompt(self) -> ScoredPrompt | None:
        """The incumbent's row: ``best`` when it shipped, else ``incumbent`` (the user's prompt), ``best_human``
        or ``no_instruction``, after its origin; None for runs made before incumbents."""
        sel = self.selection
        if sel is None or sel.incumbent is None:
            return None
        if self.best is not None and self.best.candidate == sel.incumbent:
            return self.best
        name = {"initial": "incumbent", "human": "best_human", "none": "no_instruction"}.get(sel.incumbent_origin or "")
        return next((b for b in self.baselines if b.name == name), None)
