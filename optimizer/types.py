"""Data types shared across apo: examples, requests to models and their answers, candidates, scores."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "Candidate",
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


class Candidate(BaseModel):
    """An instruction met during a search, with where it came from and its best-known dev score."""

    id: str
    """Run-local id (``c000``…; ``b…`` for baselines)."""
    text: str
    """The instruction."""
    origin: str
    """``forward`` (proposed from demonstrations), ``variation``, ``baseline`` or ``human``."""
    parent: str | None = None
    """The id of the candidate this one varies."""
    round: int = 0
    """Search round that produced it."""
    dev: Score = Field(default_factory=Score)
    """Its dev score with the most examples evaluated."""


class ScoredPrompt(BaseModel):
    """A prompt in the final report, with dev and test scores."""

    name: str
    """``best``, ``no_instruction`` or ``best_human``."""
    text: str
    """The instruction ("" for none)."""
    candidate: str | None = None
    """The candidate id."""
    dev: Score = Field(default_factory=Score)
    """Score on the dev examples used for selection."""
    test: Score | None = None
    """Score on the test split (None when the budget ran out first)."""
    test_acc: list[float] = []
    """Per-example test metric scores, in test order (for confidence intervals)."""
    test_lp: list[float] = []
    """Per-example test gold log-probabilities, in test order."""


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
    status: Literal["complete", "partial"]
    """``partial`` when the budget stopped the search or the test evaluation."""
    stop_reason: str | None = None
    """Why a partial run stopped."""
    best: ScoredPrompt | None = None
    """The searcher's best instruction by dev score."""
    baselines: list[ScoredPrompt] = []
    """No instruction and the best human instruction by dev score."""
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
