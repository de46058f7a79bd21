"""Racing that stops on evidence: a rung drops a candidate only when a paired test on the examples so far calls it
worse than the leader. On planted fields with a clear winner it never drops the candidate exhaustive scoring ranks
first, and it scores far fewer examples than exhaustive scoring."""

from __future__ import annotations

import json
import random

import pytest
from test_demos import fakes, picky_task  # noqa: F401  (the fixture registers the fake targets)

from optimizer import load_task, optimize
from optimizer.config import RunConfig
from optimizer.errors import UsageError
from optimizer.run.preflight import check_job
from optimizer.run.racing import drop_dominated, rank_key, successive_halving, worse_on_evidence
from optimizer.types import Candidate, Score

N_DEV = 50


def _field(seed: int, k: int = 12) -> dict[str, list[float]]:
    """Per-example outcomes (fixed per example) of a winner at 0.9 and k - 1 others at 0.1-0.6."""
    rng = random.Random(seed)
    truths = [0.9] + [rng.uniform(0.1, 0.6) for _ in range(k - 1)]
    return {f"c{i}": [float(rng.random() < p) for _ in range(N_DEV)] for i, p in enumerate(truths)}


def _race(outcomes: dict[str, list[float]], rule: str, delta: float = 0.05) -> tuple[list[Candidate], int]:
    reached: dict[str, int] = {}

    def evaluate(alive: list[Candidate], n: int) -> dict[str, Score]:
        for c in alive:
            reached[c.id] = max(reached.get(c.id, 0), n)  # the journal keeps earlier examples' scores
        return {c.key: Score(acc=sum(outcomes[c.id][:n]) / n, n=n) for c in alive}

    cands = [Candidate(id=cid, text=cid, origin="forward") for cid in outcomes]
    alive = successive_halving(cands, N_DEV, evaluate=evaluate, rank=rank_key, min_examples=5, eta=2, rule=rule,
                               delta=delta, per_example=lambda c: outcomes[c.id][:c.dev.n])
    return alive, sum(reached.values())


def test_the_paired_test_counts_only_the_examples_one_of_the_two_gets_right():
    # 8 examples where only the leader is right, 92 where both agree: exact p = 2**-8 = 0.0039
    leader, other = [1.0] * 8 + [1.0] * 46 + [0.0] * 46, [0.0] * 8 + [1.0] * 46 + [0.0] * 46
    assert worse_on_evidence(leader, other, 0.005) and not worse_on_evidence(leader, other, 0.003)
    assert not worse_on_evidence(other, leader, 0.5)  # one-sided
    assert not worse_on_evidence([1.0, 0.0], [1.0, 0.0], 0.5)  # no discordant pair, no evidence
    # fractional scores (F1) fall back to Hoeffding's bound on the mean difference: 0.5 > sqrt(2 ln 20 / 100)
    assert worse_on_evidence([0.75] * 100, [0.25] * 100, 0.05) and not worse_on_evidence([0.75] * 10, [0.25] * 10, 0.05)


def test_drop_dominated_keeps_the_leader_and_whatever_it_cannot_separate():
    scores = {"a": [1.0] * 20, "b": [1.0] * 19 + [0.0], "c": [0.0] * 20}
    ranked = [Candidate(id=i, text=i, origin="forward", dev=Score(acc=sum(v) / 20, n=20)) for i, v in scores.items()]
    kept = drop_dominated(ranked, lambda c: scores[c.id], 0.01)
    assert [c.id for c in kept] == ["a", "b"]
    assert drop_dominated(ranked[:1], lambda c: scores[c.id], 0.01) == ranked[:1]


def test_bounds_never_drop_the_exhaustive_winner_and_score_far_less():
    exhaustive = 12 * N_DEV
    costs = []
    for seed in range(200):
        outcomes = _field(seed)
        best = max(outcomes, key=lambda c: sum(outcomes[c]))
        alive, cost = _race(outcomes, "bounds")
        assert alive[0].id == best, seed  # kept, and first at the full dev set
        costs.append(cost)
    assert sum(costs) / len(costs) < 0.75 * exhaustive  # measured: 67% (halving: 28%)


def test_a_field_of_equals_is_never_cut_on_noise():
    outcomes = {f"c{i}": [float(random.Random(i * 1000 + j).random() < 0.5) for j in range(N_DEV)] for i in range(8)}
    dropped = 0
    for delta in (0.05, 0.2):
        alive, cost = _race(outcomes, "bounds", delta)
        dropped += 8 - len(alive)
    assert dropped <= 2  # the tests' level is split over every comparison


def test_both_halves_what_the_bounds_keep():
    outcomes = _field(3)
    both, cost_both = _race(outcomes, "both")
    halving, cost_halving = _race(outcomes, "halving")
    assert cost_both <= cost_halving and len(both) == 1


def test_bounds_need_per_example_scores_and_accuracy_scoring():
    with pytest.raises(ValueError, match="per-example"):
        successive_halving([Candidate(id="a", text="a", origin="forward")], 10, evaluate=lambda a, n: {},
                           rank=rank_key, min_examples=5, eta=2, rule="bounds")
    config = RunConfig.from_options("capitalize_words", target="fake:echo", scoring="logprob", race_rule="bounds")
    with pytest.raises(UsageError, match="race_rule bounds .*--scoring accuracy"):
        check_job(config, load_task("capitalize_words"))


@pytest.mark.parametrize("rule", ["bounds", "both"])
def test_a_job_races_by_evidence_and_ships_what_exhaustive_racing_ships(rule):
    exhaustive = optimize(picky_task(), target="fake:picky", seed=0, race_min_examples=1000, cache=False)
    raced = optimize(picky_task(), target="fake:picky", seed=0, race_rule=rule, cache=False)
    assert raced.best.text == exhaustive.best.text and raced.best.demos == exhaustive.best.demos
    assert raced.best.test.acc == exhaustive.best.test.acc == 1.0
    rungs = [json.loads(x) for x in open(f"{raced.run_dir}/events.jsonl") if '"type": "rung"' in x]
    first = [r for r in rungs if r["round"] == 0]
    assert len(first[-1]["scores"]) < len(first[0]["scores"])  # the race dropped candidates on the way
