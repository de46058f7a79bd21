"""Bootstrap intervals against cases with known answers."""

import random

import pytest

from optimizer.report.stats import bootstrap_ci, paired_bootstrap_ci


def test_all_correct_and_all_wrong_have_degenerate_intervals():
    assert bootstrap_ci([1.0] * 50) == (1.0, 1.0)
    assert bootstrap_ci([0.0] * 50) == (0.0, 0.0)


def test_interval_matches_direct_computation():
    values = [1.0] * 30 + [0.0] * 70
    rng = random.Random(11)
    means = sorted(sum(values[rng.randrange(100)] for _ in range(100)) / 100 for _ in range(500))
    lo, hi = bootstrap_ci(values, resamples=500, seed=11)
    below = int(0.025 * 499)
    assert lo == pytest.approx(means[below] + (means[below + 1] - means[below]) * (0.025 * 499 % 1))
    assert lo < 0.3 < hi
    # normal approximation: sd of the mean = sqrt(.3*.7/100) ~ 0.046, so the interval is about +-0.09
    assert 0.15 < hi - lo < 0.22


def test_same_seed_same_interval_and_paired_difference():
    a = [1.0, 0.0, 1.0, 1.0, 0.0] * 10
    b = [0.0, 0.0, 1.0, 0.0, 0.0] * 10
    assert bootstrap_ci(a, seed=3) == bootstrap_ci(a, seed=3)
    lo, hi = paired_bootstrap_ci(a, b)
    assert 0 < lo < 0.4 < hi
    with pytest.raises(ValueError):
        paired_bootstrap_ci(a, b[:-1])


def _plain_loop(values, resamples, seed):
    """The interval as a plain Python loop of ``randrange`` draws computes it."""
    rng, n = random.Random(seed), len(values)
    means = sorted(sum(values[rng.randrange(n)] for _ in range(n)) / n for _ in range(resamples))
    tail = (1 - 0.95) / 2
    pos = tail * (resamples - 1), (1 - tail) * (resamples - 1)
    return tuple(means[int(p)] + (means[min(int(p) + 1, resamples - 1)] - means[int(p)]) * (p - int(p)) for p in pos)


@pytest.mark.parametrize("n", [1, 2, 3, 7, 64, 100, 129, 872])
def test_bulk_draws_give_the_plain_loops_interval_exactly(n, monkeypatch):
    rng = random.Random(n)
    for values in ([rng.random() for _ in range(n)], [float(rng.random() < 0.6) for _ in range(n)],
                   [rng.choice([-1.0, 0.0, 0.5, 1.0]) for _ in range(n)]):
        for seed in (0, 5):
            assert bootstrap_ci(values, resamples=300, seed=seed) == _plain_loop(values, 300, seed)
    monkeypatch.setattr("optimizer.report.stats._BLOCK", 40)  # blocks of resamples: draws carry over between them
    assert bootstrap_ci(values, resamples=301, seed=2) == _plain_loop(values, 301, 2)
