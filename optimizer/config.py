"""Run configuration: one pydantic model built by the CLI and the Python API alike."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["APEConfig", "Budget", "RunConfig"]


class Budget(BaseModel):
    """Limits on one run, across proposer and target together. ``None`` means no limit."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    max_calls: int | None = Field(default=None, ge=1)
    """Most model requests that reach a provider (cached answers are free)."""
    max_tokens: int | None = Field(default=None, ge=1)
    """Most prompt plus generated tokens, counted over provider calls."""
    max_seconds: float | None = Field(default=None, gt=0)
    """Wall-clock limit on the search; the final test evaluation still runs after it."""
    max_cost: float | None = Field(default=None, gt=0)
    """Most estimated US dollars over provider calls (needs a price for every API model)."""


class APEConfig(BaseModel):
    """Parameters of the APE searcher (Zhou et al. 2022)."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    candidates: int = Field(default=12, ge=1)
    """Instructions asked of the proposer in the first round (before de-duplication)."""
    demos_per_proposal: int = Field(default=5, ge=1)
    """Demonstrations shown in each proposal meta-prompt."""
    subsets: int = Field(default=4, ge=1)
    """Distinct demonstration subsets; each gets ``candidates / subsets`` samples."""
    rounds: int = Field(default=2, ge=0)
    """Iterative Monte Carlo rounds after the first: variations of the current top-k."""
    top_k: int = Field(default=3, ge=1)
    """How many of the best candidates are varied each round."""
    variations: int = Field(default=3, ge=1)
    """Variations asked per top-k candidate each round."""
    temperature: float = Field(default=0.7, ge=0.0)
    """Proposer sampling temperature."""
    proposal_style: Literal["auto", "completion", "chat"] = "completion"
    """Meta-prompt style: completion (APE's own: the proposer continues "The instruction was to"),
    chat (one user message; for chat-only APIs), or auto (chat when the proposer has a chat template).
    Completion gave usable instructions from the embedded SmolLM2, chat mostly echoed the request."""
    race_min_examples: int = Field(default=5, ge=1)
    """Dev examples in the first rung of successive halving."""
    race_eta: int = Field(default=2, ge=2)
    """Successive-halving factor: keep 1/eta of the candidates, multiply examples by eta."""
    max_instruction_chars: int = Field(default=300, ge=10)
    """Longer proposals are cut here."""


class RunConfig(BaseModel):
    """Everything that defines an optimization job. Stored as ``runs/<id>/config.json``."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    task: str
    """A bundled task name, a task folder/file, or an instruction-induction task under data_dir."""
    data_dir: str | None = None
    """Folder of external task data (e.g. ../shared/data/instruction_induction)."""
    searcher: Literal["ape"] = "ape"
    """Which search strategy."""
    target: str = "embedded"
    """The model that executes candidate prompts (``embedded``, ``hf:PATH``, ``fake:NAME``)."""
    proposer: str | None = None
    """The model that writes candidate instructions; defaults to the target."""
    metric: str | None = None
    """Override the task's metric."""
    shots: int | None = Field(default=None, ge=0)
    """Demonstrations in the execution template; defaults to the task's."""
    template: Literal["completion", "chat"] = "completion"
    """Execution template style."""
    scoring: Literal["accuracy", "logprob"] = "accuracy"
    """Candidate score: execution accuracy under the metric, or the gold output's log-probability."""
    tiebreak_logprob: bool = True
    """With accuracy scoring, also compute the gold log-probability and break ties with it."""
    dev_size: int | None = Field(default=50, ge=1)
    """Most dev examples used for selection (the first N of the task's dev split)."""
    test_size: int | None = Field(default=None, ge=1)
    """Most test examples in the final report (None: all)."""
    seed: int = 0
    """Seeds demonstration sampling, proposals and sampling; same seed, same result."""
    ape: APEConfig = Field(default_factory=APEConfig)
    """APE parameters."""
    budget: Budget = Field(default_factory=Budget)
    """Limits on calls, tokens and time."""
    cache: bool = True
    """Use the on-disk response cache."""
    base_url: str | None = None
    """Base URL of an OpenAI-compatible server for ``openai:`` models (default: $OPENAI_BASE_URL)."""
    request_timeout: float = Field(default=120.0, gt=0)
    """Seconds to wait for one API response; a request that takes longer is retried like a 5xx."""
    prices: str | None = None
    """JSON file of model prices overriding the built-in table (default: $APO_PRICES)."""
    concurrency: int = Field(default=4, ge=1)
    """Requests in flight at once per API provider, proposer and target together (local models batch instead)."""
    batch_size: int = Field(default=64, ge=1)
    """Requests sent to the model client at once."""
