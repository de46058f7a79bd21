"""Ranking and racing: the one rule that orders scores, and successive halving over dev examples.

Any searcher races its candidates through :meth:`SearchContext.race
<optimizer.run.context.SearchContext.race>`, which calls :func:`successive_halving` with the run's
:class:`~optimizer.config.RacingConfig`. Reports rank with the same :func:`rank_key`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from optimizer.types import Candidate, Score

__all__ = ["drop_dominated", "rank_key", "successive_halving", "worse_on_evidence"]


def rank_key(score: Score | None, scoring: str = "accuracy") -> tuple[float, float]:
    """Sort key of a score (higher is better): the run's chosen score first, the other as tie-breaker.

    Args:
        score: mean accuracy and log-probability (missing values rank lowest).
        scoring: ``accuracy`` (log-probability breaks ties) or ``logprob`` (the reverse).

    Returns:
        A tuple to sort by, descending.
    """
    acc = score.acc if score is not None and score.acc is not None else -math.inf
    lp = score.lp if score is not None and score.lp is not None else -math.inf
    return (lp, acc) if scoring == "logprob" else (acc, lp)


def worse_on_evidence(leader: Sequence[float], other: Sequence[float], alpha: float) -> bool:
    """Whether ``other`` scores lower than ``leader`` on the same examples, one-sided at level ``alpha`` (paired).

    Scores in {0, 1}: the exact binomial (McNemar) test on the examples exactly one of the two gets right, so
    examples both get right or both miss cost no width. Other scores in [0, 1] (F1): Hoeffding's bound on the mean
    paired difference, which lies in [-1, 1].

    Args:
        leader: the leader's per-example scores.
        other: the other candidate's scores on the same examples, in the same order.
        alpha: the test's level.

    Returns:
        True when the evidence says ``other``'s mean is lower.
    """
    pairs = list(zip(leader, other, strict=True))
    if all(a in (0.0, 1.0) and b in (0.0, 1.0) for a, b in pairs):
        wins, losses = sum(a > b for a, b in pairs), sum(a < b for a, b in pairs)
        m = wins + losses
        return m > 0 and sum(math.comb(m, k) for k in range(wins, m + 1)) / 2**m <= alpha
    mean = sum(a - b for a, b in pairs) / len(pairs) if pairs else 0.0
    return bool(pairs) and mean > math.sqrt(2 * math.log(1 / alpha) / len(pairs))


def drop_dominated(ranked: list[Candidate], per_example: Callable[[Candidate], Sequence[float]],
                   alpha: float) -> list[Candidate]:
    """The candidates (best first) that the evidence cannot yet call worse than the leader.

    Args:
        ranked: the field after a rung, best first (all scored on the same examples).
        per_example: a candidate's scores on the rung's examples, in order.
        alpha: level of each comparison (:func:`worse_on_evidence`).

    Returns:
        The leader and every candidate not significantly worse than it.
    """
    if len(ranked) < 2:
        return ranked
    top = per_example(ranked[0])
    return [ranked[0]] + [c for c in ranked[1:] if not worse_on_evidence(top, per_example(c), alpha)]


def successive_halving(
    candidates: Sequence[Candidate],
    n_examples: int,
    *,
    evaluate: Callable[[list[Candidate], int], dict[str, Score]],
    rank: Callable[[Score], tuple[float, float]],
    min_examples: int,
    eta: int,
    on_rung: Callable[[list[Candidate], int], None] = lambda alive, n: None,
    rule: str = "halving",
    delta: float = 0.05,
    per_example: Callable[[Candidate], Sequence[float]] | None = None,
) -> list[Candidate]:
    """Race candidates: all on the first few examples, the best 1/eta on eta times as many, up to all.

    Every candidate keeps (in ``candidate.dev``) the score over the most examples it reached. With ``rule``
    ``bounds`` a rung drops instead every candidate a paired test calls worse than the leader on the examples so
    far (:func:`drop_dominated`), keeping the rest, so a candidate leaves only on evidence; ``both`` does that and
    then halves. The tests' level is ``delta`` split over every comparison the race can make (the field's size
    times its rungs, a union bound), so the best candidate is dropped by a test with probability at most ``delta``.

    Args:
        candidates: the field (duplicates by id are raced once).
        n_examples: dev examples available.
        evaluate: ``(candidates, n) -> {candidate key: Score}`` on the first ``n`` examples.
        rank: sort key of a score (see :func:`rank_key`).
        min_examples: examples in the first rung.
        eta: keep 1/eta of the field, multiply the examples by eta.
        on_rung: called after each rung with the ranked field and ``n`` (the engine records it).
        rule: ``halving``, ``bounds`` or ``both``.
        delta: the tests' error probability over the whole race (with ``bounds`` or ``both``).
        per_example: a candidate's accuracy on each of the examples it was last scored on, in order (needed by
            ``bounds`` and ``both``).

    Returns:
        The survivors of the last rung, best first.
    """
    alive = list({c.id: c for c in candidates}.values())
    n = min(min_examples, n_examples)
    if rule != "halving" and per_example is None:
        raise ValueError(f"racing rule {rule!r} needs per-example scores")
    rungs = 1 + max(0, math.ceil(math.log(n_examples / n, eta))) if n else 1
    alpha = delta / (max(1, len(alive) - 1) * rungs)
    while alive:
        scores = evaluate(alive, n)
        for c in alive:
            if scores[c.key].n >= c.dev.n:
                c.dev = scores[c.key]
        alive.sort(key=lambda c: rank(c.dev), reverse=True)
        on_rung(alive, n)
        if n >= n_examples:
            break
        if rule in ("bounds", "both") and per_example is not None:
            alive = drop_dominated(alive, per_example, alpha)
        if rule in ("halving", "both"):
            alive = alive[: max(1, math.ceil(len(alive) / eta))]
        n = min(n * eta, n_examples)
    return alive
