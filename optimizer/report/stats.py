"""Bootstrap confidence intervals for mean scores and paired differences."""

from __future__ import annotations

import random
from collections.abc import Sequence

import numpy as np

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
    vals = np.asarray(list(values), dtype=np.float64)
    if not len(vals):
        return (float("nan"), float("nan"))
    n = len(vals)
    means: list[float] = []
    block = max(1, _BLOCK // n)
    draws = _RandrangeDraws(n, seed)
    for start in range(0, resamples, block):
        rows = min(block, resamples - start)
        idx = draws.take(rows * n).reshape(rows, n)
        # cumsum adds left to right, as sum() does, so each mean is the same float as a plain loop's
        means += (np.cumsum(vals[idx], axis=1)[:, -1] / n).tolist()
    means.sort()
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


_BLOCK = 1 << 22  # resampled values held at once


class _RandrangeDraws:
    """The numbers ``random.Random(seed).randrange(n)`` returns call after call, drawn in bulk.

    numpy's MT19937 started from the same state gives the same 32-bit words, and ``randrange``
    keeps the top ``n.bit_length()`` bits of a word when they are below ``n`` (else draws again),
    so the resamples (and every interval) are those of the plain Python loop, many times faster.
    """

    def __init__(self, n: int, seed: int):
        self.n, self.bits = n, n.bit_length()
        if self.bits > 32:
            raise ValueError(f"cannot resample {n} values: at most 2**32 - 1")
        state = random.Random(seed).getstate()[1]
        self.gen = np.random.MT19937()
        self.gen.state = {"bit_generator": "MT19937",
                          "state": {"key": np.array(state[:624], dtype=np.uint32), "pos": state[624]}}
        self.left = np.empty(0, dtype=np.int64)  # drawn, not yet taken

    def take(self, count: int) -> np.ndarray:
        """The next ``count`` draws."""
        parts, have = [self.left], len(self.left)
        while have < count:  # acceptance is above one half, so about two words a draw at most
            words = (self.gen.random_raw(2 * (count - have) + 64) >> (32 - self.bits)).astype(np.int64)
            parts.append(words[words < self.n])
            have += len(parts[-1])
        drawn = np.concatenate(parts)
        self.left = drawn[count:]
        return drawn[:count]
