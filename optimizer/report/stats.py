"""Bootstrap confidence intervals for mean scores and paired differences."""

from __future__ import annotations

import random
from collections.abc import Sequence

__all__ = ["bootstrap_ci", "paired_bootstrap_ci"]


def _percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        raise ValueError("no values")
    pos = q * (len(sorted_values) - 1)
    lo = int(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


def bootstrap_ci(values: Sequence[float], *, resamples: int = 2000, confidence: float = 0.95,
                 seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean.

    Args:
        values: per-example scores.
        resamples: bootstrap resamples.
        confidence: interval mass (0.95 for a 95% interval).
        seed: seeds the resampling, so the same input gives the same interval.

    Returns:
        (low, high); (nan, nan) when ``values`` is empty.
    """
    vals = list(values)
    if not vals:
        return (float("nan"), float("nan"))
    rng = random.Random(seed)
    n = len(vals)
    means = sorted(sum(vals[rng.randrange(n)] for _ in range(n)) / n for _ in range(resamples))
    tail = (1 - confidence) / 2
    return (_percentile(means, tail), _percentile(means, 1 - tail))


def paired_bootstrap_ci(a: Sequence[float], b: Sequence[float], **kwargs) -> tuple[float, float]:
    """Bootstrap interval of mean(a - b) over paired examples (same examples, same order).

    Args:
        a: per-example scores of one prompt.
        b: per-example scores of the other, on the same examples.
        **kwargs: passed to :func:`bootstrap_ci`.

    Returns:
        (low, high) of the mean difference.
    """
    if len(a) != len(b):
        raise ValueError(f"paired scores need equal lengths, got {len(a)} and {len(b)}")
    return bootstrap_ci([x - y for x, y in zip(a, b)], **kwargs)
