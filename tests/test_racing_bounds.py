"""Racing that stops on evidence: a rung drops a candidate only when its accuracy's upper confidence bound is below
the leader's lower bound. On a planted field with a clear winner it never drops the candidate exhaustive scoring
ranks first, and it scores fewer examples than exhaustive scoring."""

from __future__ import annotations

import random

import pytest

from optimizer.run.racing import bound_width, drop_dominated, rank_key, successive_halving
from optimizer.types import Candidate, Score

N_DEV = 50


def _field(seed: int, k: int = 12) -> dict[str, list[float]]:
    """Per-example outcomes (fixed per example) of a winner at 0.9 and k - 1 others at 0.1-0.6."""
    rng = random.Random(seed)
    truths = [0.9] + [rng.uniform(0.1, 0.6) for _ in range(k - 1)]
    return {f"c{i}": [float(rng.random() < p) for _ in range(N_DEV)] for i, p in enumerate(truths)}


def _race(outcomes: dict[str, list[float]], rule: str) -> tuple[list[Candidate], int]:
    reached: dict[str, int] = {}

    def evaluate(alive: list[Candidate], n: int) -> dict[str, Score]:
        for c in alive:
            reached[c.id] = max(reached.get(c.id, 0), n)  # the journal keeps earlier examples' scores
        return {c.key: Score(acc=sum(outcomes[c.id][:n]) / n, n=n) for c in alive}

    cands = [Candidate(id=cid, text=cid, origin="forward") for cid in outcomes]
    alive = successive_halving(cands, N_DEV, evaluate=evaluate, rank=rank_key, min_examples=5, eta=2, rule=rule)
    return alive, sum(reached.values())


def test_bounds_are_hoeffdings_and_keep_the_leader():
    assert bound_width(50, 0.05) == pytest.approx(0.192, abs=1e-3) and bound_width(0, 0.05) == float("inf")
    ranked = [Candidate(id=i, text=i, origin="forward", dev=Score(acc=a, n=50)) for i, a in
              (("a", 0.9), ("b", 0.8), ("c", 0.1))]
    assert [c.id for c in drop_dominated(ranked, 0.05)] == ["a", "b"]  # only c is clearly worse
    assert [c.id for c in drop_dominated(ranked[:1], 0.05)] == ["a"]


def test_bounds_never_drop_the_exhaustive_winner_and_score_less():
    exhaustive = 12 * N_DEV
    costs = []
    for seed in range(200):
        outcomes = _field(seed)
        best = max(outcomes, key=lambda c: sum(outcomes[c]))
        alive, cost = _race(outcomes, "bounds")
        assert alive[0].id == best, seed  # kept, and first at the full dev set
        costs.append(cost)
    # Hoeffding's bounds are wide on 50 examples: the clear losers leave early, the rest run to the end
    assert sum(costs) / len(costs) < exhaustive


def test_both_halves_what_the_bounds_keep():
    outcomes = _field(3)
    both, cost_both = _race(outcomes, "both")
    halving, cost_halving = _race(outcomes, "halving")
    assert cost_both <= cost_halving and len(both) == 1
