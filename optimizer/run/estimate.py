"""A pre-run estimate of a job's model calls and tokens (``apo optimize … --dry-run``).

Calls are an upper bound: it assumes no duplicate proposals, no cache hits and that every
race runs to the full dev set; tokens are approximate (4 characters a token).
"""

from __future__ import annotations

import math

from pydantic import BaseModel

from optimizer.config import RunConfig
from optimizer.models.prices import cost, load_prices, price_of
from optimizer.models.registry import API_PROVIDERS, parse_model
from optimizer.search.ape.prompts import forward_prompt
from optimizer.tasks.task import Task
from optimizer.tasks.templates import execution_template

__all__ = ["Estimate", "estimate", "race_cost"]

CHARS_PER_TOKEN = 4


class Estimate(BaseModel):
    """Expected usage of one job."""

    proposer_calls: int
    """Proposal and variation requests (at most)."""
    target_calls: int
    """Scoring requests on dev and test (at most)."""
    tokens: int
    """Prompt plus generated tokens, approximately."""
    pairs: dict[str, int]
    """(instruction, example) pairs scored per phase (at most)."""
    cost_usd: float | None = None
    """Estimated dollars from the price table (None when a model has no known price)."""

    @property
    def calls(self) -> int:
        """Every request, proposer and target together."""
        return self.proposer_calls + self.target_calls


def race_cost(candidates: int, examples: int, first: int, eta: int) -> int:
    """(candidate, example) evaluations of successive halving with a journal (no re-scoring).

    Args:
        candidates: how many start the race.
        examples: dev examples available.
        first: examples in the first rung.
        eta: keep 1/eta, multiply examples by eta.

    Returns:
        The number of new evaluations.
    """
    if candidates <= 0 or examples <= 0:
        return 0
    alive, n, done, total = candidates, min(first, examples), 0, 0
    while True:
        total += alive * (n - done)
        if n >= examples:
            return total
        done, alive, n = n, max(1, math.ceil(alive / eta)), min(n * eta, examples)


def _split_sizes(config: RunConfig, task: Task) -> tuple[int, int, int]:
    """Raced dev, confirmation and test examples, as the run will split them."""
    confirm = min(config.selection.confirm_limit, len(task.dev) // 2)
    rest = len(task.dev) - confirm
    dev = min(config.dev_limit or rest, rest)
    test = min(config.test_limit or len(task.test), len(task.test))
    return dev, confirm, test


def _search_phases(config: RunConfig, dev: int) -> tuple[dict[str, int], int, int]:
    """The searcher's (prompt, example) pairs per phase, its proposer calls, and its train-split pairs."""
    min_examples, eta = config.racing.min_examples, config.racing.eta
    race = lambda n: race_cost(n, dev, min_examples, eta)  # noqa: E731
    pairs: dict[str, int] = {}
    proposer = train = 0
    if config.searcher == "ape":
        ape = config.ape
        new_per_round = ape.top_k * ape.variations
        pairs["round 0"] = race(ape.candidates + 1)
        pairs["refinement"] = ape.rounds * race(ape.top_k + new_per_round)
        proposer = ape.candidates + ape.rounds * new_per_round
    if config.searcher == "demos" or (config.searcher == "ape" and config.ape.demo_search):
        demos = config.demos
        pairs["demonstration sets"] = race(demos.sets + len(demos.nearest) + 1) + race(2 + 2 * 2)
        train += demos.bootstrap_pool
    if config.searcher == "joint":
        joint = config.joint
        pairs["joint trials"] = joint.trials * min(joint.minibatch, dev) + race(2 * joint.top_combinations + 1)
        train += config.demos.bootstrap_pool
        proposer = joint.instructions
    if config.searcher == "reflect":
        ref = config.reflect
        pairs["reflection"] = ref.rounds * race(ref.beam + ref.beam * ref.rewrites)
        train += ref.rounds * ref.beam * ref.minibatch * ref.max_minibatches
        proposer = 2 * ref.rounds * ref.beam * ref.rewrites
    return pairs, proposer, train


def estimate(config: RunConfig, task: Task) -> Estimate:
    """Upper bound on calls and approximate tokens of ``config`` on ``task`` (APE, demos and reflect jobs).

    Args:
        config: the job.
        task: its task.

    Returns:
        The estimate.
    """
    dev, confirm, test = _split_sizes(config, task)
    humans = len(dict.fromkeys(task.instructions))
    search, proposer_calls, train_pairs = _search_phases(config, dev)
    pairs = {"baselines": dev + race_cost(humans + 1, dev, config.racing.min_examples, config.racing.eta), **search,
             "confirm": (config.selection.finalists + 1) * confirm, "test": 5 * test}
    if train_pairs:
        pairs["train (failures, bootstrapping)"] = train_pairs
    local = parse_model(config.target)[0] not in API_PROVIDERS
    lp = config.scoring == "logprob" or (config.tiebreak_logprob and local)
    per_pair = (1 if config.scoring == "accuracy" else 0) + (1 if lp else 0)
    dev_pairs = sum(v for k, v in pairs.items() if k not in {"test", "confirm"} and not k.startswith("train"))
    target_calls = (dev_pairs * per_pair + pairs["confirm"] + train_pairs
                    + pairs["test"] * (1 + (1 if local or config.scoring == "logprob" else 0)))

    template = execution_template(task, shots=config.shots, style=config.execution_style, seed=config.seed)
    sample = task.dev[0] if task.dev else task.train[0]
    pair_in = len(template.context("x" * 60, sample)) // CHARS_PER_TOKEN
    if "demonstration sets" in pairs or "joint trials" in pairs:  # the largest sets are the longest prompts
        pair_in += max(config.demos.k) * len(f"Input: {sample.input}\nOutput: {sample.output}\n\n") // CHARS_PER_TOKEN
    pair_out = task.max_output_tokens
    demos = task.train[: config.ape.demos_per_proposal]
    proposal = forward_prompt(demos, "completion", seed=0, sample_index=0, temperature=0)
    proposal_in = len(proposal.prompt or "") // CHARS_PER_TOKEN
    proposal_out = 64
    tokens = target_calls * (pair_in + pair_out) + proposer_calls * (proposal_in + proposal_out)
    prices = load_prices(config.prices)
    target_price = price_of(config.target, prices)
    proposer_price = price_of(config.proposer or config.target, prices)
    usd = None
    if target_price is not None and proposer_price is not None:
        usd = round(cost(target_price, target_calls * pair_in, target_calls * pair_out)
                    + cost(proposer_price, proposer_calls * proposal_in, proposer_calls * proposal_out), 6)
    return Estimate(proposer_calls=proposer_calls, target_calls=target_calls, tokens=tokens, pairs=pairs, cost_usd=usd)
