"""The sections of a run configuration: budget, racing, selection and each searcher's parameters.

:class:`~optimizer.config.RunConfig` holds one of each; ``optimizer.config`` re-exports them.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = ["APEConfig", "AutoPromptConfig", "Budget", "DemosConfig", "JointConfig", "RacingConfig", "ReflectConfig",
           "SelectionConfig", "SoftConfig", "SoftMethod"]


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
    max_instruction_chars: int = Field(default=300, ge=10)
    """Longer proposals are cut here."""
    demo_search: bool = False
    """After the instruction rounds, also search demonstration sets for the best instructions (the ``demos``
    searcher's random and bootstrapped sets, raced against the instructions with the run's demonstrations)."""


class RacingConfig(BaseModel):
    """How candidates are raced over dev examples (successive halving), for every searcher."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    min_examples: int = Field(default=5, ge=1)
    """Dev examples in the first rung of successive halving."""
    eta: int = Field(default=2, ge=2)
    """Successive-halving factor: keep 1/eta of the candidates, multiply examples by eta."""
    rule: Literal["halving", "bounds", "both"] = "halving"
    """What a rung drops: the worse part of the field (``halving``); every candidate a one-sided paired test calls
    worse than the leader on the examples so far (``bounds``: McNemar's exact test on 0/1 scores, Hoeffding's bound
    otherwise; so a candidate leaves only on evidence); or both."""
    delta: float = Field(default=0.05, gt=0.0, lt=1.0)
    """Error probability of the paired tests over the whole race (split over the field's size times its rungs), so
    the best candidate is dropped by a test with probability at most ``delta``."""


class AutoPromptConfig(BaseModel):
    """Parameters of the AutoPrompt searcher (Shin et al. 2020): gradient-guided trigger tokens."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    cloze_template: str | None = None
    """Cloze template with [T] trigger slots and one [P] prediction slot, e.g. ``{sentence} [T] [T] [T] [P] .``
    (default: ``[X]``, ``trigger_tokens`` slots, ``[P] .``)."""
    trigger_tokens: int = Field(default=3, ge=1)
    """Trigger slots in the default template (ignored when ``cloze_template`` is given)."""
    label_words: dict[str, list[str]] | None = None
    """Verbalizer: label words per class, each a single token, e.g. ``{"positive": ["good"], "negative": ["bad"]}``;
    several words per class have their probabilities summed; the command line's string form
    ``"positive=good,great;negative=bad"`` is accepted too. Default: the task's labels as their own words, or
    (no labels) the gold output itself predicted over the whole vocabulary (fact retrieval)."""
    loss: Literal["vocab", "labels"] = "vocab"
    """Class probability for the loss and the reported log-probability: ``vocab`` (the paper: summed probability
    of the class's label words under the softmax over the whole vocabulary) or ``labels`` (renormalized over
    the classes only, so the search optimizes discrimination rather than the label words' overall mass).
    Accuracy is the same either way."""
    auto_label_words: int | None = Field(default=None, ge=1)
    """Find this many label words per class automatically (the paper's label search: a logistic classifier on
    the [P] hidden state, vocabulary ranked by it) instead of ``label_words``."""
    token_candidates: int = Field(default=10, ge=1)
    """Candidate tokens per iteration: the top-k by -gradient . embedding at the chosen slot."""
    iterations: int = Field(default=50, ge=0)
    """Search iterations (one slot updated at most per iteration)."""
    gradient_batch_size: int = Field(default=32, ge=1)
    """Training examples in the gradient batch."""
    eval_batch_size: int = Field(default=32, ge=1)
    """Training examples in the fresh batch on which the candidates are compared with the current trigger."""
    position: Literal["random", "round_robin"] = "random"
    """How the slot to update is chosen each iteration."""
    patience: int | None = Field(default=None, ge=1)
    """Stop after this many consecutive iterations without an accepted replacement (None: never)."""
    filter_subwords: bool = True
    """Exclude word pieces that continue a word (``##ing``, BPE tokens without a leading space) from candidates."""
    initial_trigger: str | None = None
    """Space-separated starting trigger words, one token each (default: the mask token for a masked LM, ``the``
    for a causal LM)."""
    train_eval_size: int = Field(default=64, ge=1)
    """Training examples of the fixed subset on which every accepted trigger's train loss is reported."""
    max_rows: int = Field(default=128, ge=1)
    """Most rows (examples x candidates) in one forward pass."""


    @field_validator("label_words", mode="before")
    @classmethod
    def _parse_label_words(cls, value):
        if isinstance(value, (str, dict)):  # a dict may give one word per class as a plain string
            from optimizer.tasks.cloze import parse_label_words

            return parse_label_words(value)
        return value


class SelectionConfig(BaseModel):
    """How the prompt to ship is chosen: finalists from racing, confirmed against the incumbent on held-out dev."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    confirm_limit: int = Field(default=100, ge=0)
    """Dev examples set aside before the search (at most this many, and at most half the dev split) on which the
    finalists and the incumbent are scored once racing is over; racing never sees them. 0 turns confirmation off:
    the best candidate on dev is shipped untested (verdict ``not tested``)."""
    finalists: int = Field(default=3, ge=1)
    """Best raced candidates compared with the incumbent on the confirmation examples."""
    alpha: float = Field(default=0.05, gt=0.0, lt=1.0)
    """Significance level of the one-sided paired test (corrected over the finalists by step-down max-T)."""
    prefer: Literal["instruction", "accuracy", "shorter"] = "instruction"
    """Which of the finalists the test calls better ships. ``accuracy``: the largest gain on the confirmation
    examples. ``instruction``: the same, unless a finalist that keeps the incumbent's instruction (with other
    demonstrations) is also better and the largest gain does not beat it significantly (uncorrected one-sided
    paired test at ``alpha``); that one ships, so your wording is kept where the demonstrations carry the gain.
    ``shorter``: once the winner is chosen, ship the prompt with the fewest tokens among the finalists and the
    incumbent that are not significantly worse than it on the confirmation examples (the same test)."""


class DemosConfig(BaseModel):
    """Parameters of the ``demos`` searcher: which demonstrations, how many, in what order."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    sets: int = Field(default=12, ge=1)
    """Demonstration sets raced (random and bootstrapped together)."""
    k: list[int] = Field(default_factory=lambda: [2, 4, 6, 8, 12, 16], min_length=1)
    """Numbers of demonstrations tried, in turn (each at most the train examples available)."""
    bootstrapped: float = Field(default=0.5, ge=0.0, le=1.0)
    """Share of the sets drawn from bootstrapped demonstrations: training examples the target already answers
    right under the instruction (the rest are random training examples)."""
    bootstrap_pool: int = Field(default=24, ge=1)
    """Training examples scored under the instruction to find the ones it answers right."""
    nearest: list[Annotated[int, Field(ge=1)]] = Field(default_factory=lambda: [8])
    """Numbers of *nearest* demonstrations tried (empty: none): a prompt that shows each input the k training
    examples whose inputs are most like it, the closest last (see :mod:`optimizer.tasks.nearest`)."""


class ReflectConfig(BaseModel):
    """Parameters of the ``reflect`` searcher: error-driven rewrites of the best prompts."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    rounds: int = Field(default=3, ge=1)
    """Reflection rounds; each critiques and rewrites every prompt of the beam, then races."""
    beam: int = Field(default=2, ge=1)
    """Best prompts kept between rounds and reflected on."""
    rewrites: int = Field(default=2, ge=1)
    """Rewrites asked per beam prompt each round (each with its own critique)."""
    minibatch: int = Field(default=12, ge=1)
    """Training examples a beam prompt is run on each round to find its failures (never dev or test)."""
    max_minibatches: int = Field(default=4, ge=1)
    """Minibatches drawn in a round, one after another, while a beam prompt gets all of them right; a prompt
    with no failure in any is left as it is (and a round where no prompt has one ends the search)."""
    failures_shown: int = Field(default=4, ge=1)
    """Failed examples shown to the proposer in one critique."""
    temperature: float = Field(default=0.7, ge=0.0)
    """Proposer sampling temperature for critiques and rewrites."""
    max_instruction_chars: int = Field(default=400, ge=10)
    """Longer rewrites are cut here."""
    proposal_style: Literal["auto", "completion", "chat"] = "completion"
    """Meta-prompt style, as for APE: completion (the proposer continues "A better instruction … was to"), chat
    (one user message; for chat-only APIs) or auto (chat when the proposer has a chat template)."""


class JointConfig(BaseModel):
    """Parameters of the ``joint`` searcher: instructions × demonstration sets under a Bayesian optimizer."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    instructions: int = Field(default=6, ge=1)
    """Instructions asked of the proposer (from random training demonstrations); the incumbent's is added."""
    demo_sets: int = Field(default=6, ge=1)
    """Demonstration sets drawn as the ``demos`` searcher draws them; the incumbent's own set is added."""
    trials: int = Field(default=24, ge=1)
    """Trials of the TPE sampler: one (instruction, demonstration set) scored on one minibatch each."""
    startup_trials: int = Field(default=8, ge=1)
    """Random trials before TPE models the scores."""
    minibatch: int = Field(default=8, ge=1)
    """Raced dev examples per trial (a fresh random draw each trial)."""
    top_combinations: int = Field(default=4, ge=1)
    """Combinations with the best mean minibatch score raced on the full dev set with the incumbent (each with a
    proposed instruction beside its demonstrations under the incumbent's instruction)."""
    demos_per_proposal: int = Field(default=5, ge=1)
    """Training demonstrations shown in each proposal meta-prompt."""
    temperature: float = Field(default=0.7, ge=0.0)
    """Proposer sampling temperature."""
    proposal_style: Literal["auto", "completion", "chat"] = "completion"
    """Meta-prompt style, as for APE."""
    max_instruction_chars: int = Field(default=300, ge=10)
    """Longer proposals are cut here."""


SoftMethod = Literal["prompt-tuning", "prefix-tuning", "p-tuning", "lora"]


class SoftConfig(BaseModel):
    """Parameters of the trained searchers (``prompt-tuning``, ``prefix-tuning``, ``p-tuning``, ``lora``), all
    built on peft. Defaults follow the papers, scaled for a CPU: few virtual tokens, short training."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    steps: int = Field(default=150, ge=1)
    """Optimizer steps (each on one minibatch of training examples)."""
    train_batch_size: int = Field(default=8, ge=1)
    """Training examples per step."""
    eval_every: int = Field(default=25, ge=1)
    """Steps between checkpoints; each is scored on dev as a candidate (early stopping picks the best)."""
    patience: int | None = Field(default=None, ge=1)
    """Stop after this many checkpoints without a better dev score (None: train every step)."""
    learning_rate: float | None = Field(default=None, gt=0)
    """AdamW learning rate (None: 0.03 for prompt tuning, 0.01 for prefix tuning and P-tuning, 0.001 for LoRA)."""
    virtual_tokens: int = Field(default=8, ge=1)
    """Virtual tokens of prompt tuning, prefix tuning and P-tuning."""
    init_text: str | None = None
    """Prompt tuning: initialise the virtual tokens from this text's embeddings (None: from randomly sampled
    vocabulary embeddings, the paper's "sampled vocab")."""
    encoder_hidden_size: int = Field(default=128, ge=1)
    """P-tuning: hidden size of the prompt encoder (an MLP)."""
    lora_rank: int = Field(default=8, ge=1)
    """LoRA: rank of the update matrices (on the attention query and value projections)."""
    lora_alpha: int = Field(default=16, ge=1)
    """LoRA: scaling numerator (the update is scaled by alpha / rank)."""
