"""Ranking and racing: the one rule that orders scores, and successive halving over dev examples.

Any searcher races its candidates through :meth:`SearchContext.race
<optimizer.run.context.SearchContext.race>`, which calls :func:`successive_halving` with the run's
:class:`~optimizer.config.RacingConfig`. Reports rank with the same :func:`rank_key`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from optimizer.types import Candidate, Score

__all__ = ["rank_key", "successive_halving"]


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


def successive_halving(
    candidates: Sequence[Candidate],
    n_examples: int,
    *,
    evaluate: Callable[[list[Candidate], int], dict[str, Score]],
    rank: Callable[[Score], tuple[float, float]],
    min_examples: int,
    eta: int,
    on_rung: Callable[[list[Candidate], int], None] = lambda alive, n: None,
) -> list[Candidate]:
    """Race candidates: all on the first few examples, the best 1/eta on eta times as many, up to all.

    Every candidate keeps (in ``candidate.dev``) the score over the most examples it reached.

    Args:
        candidates: the field (duplicates by id are raced once).
        n_examples: dev examples available.
        evaluate: ``(candidates, n) -> {candidate key: Score}`` on the first ``n`` examples.
        rank: sort key of a score (see :func:`rank_key`).
        min_examples: examples in the first rung.
        eta: keep 1/eta of the field, multiply the examples by eta.
        on_rung: called after each rung with the ranked field and ``n`` (the engine records it).

    Returns:
        The survivors of the last rung, best first.
    """
    alive = list({c.id: c for c in candidates}.values())
    n = min(min_examples, n_examples)
    while alive:
        scores = evaluate(alive, n)
        for c in alive:
            if scores[c.key].n >= c.dev.n:
                c.dev = scores[c.key]
        alive.sort(key=lambda c: rank(c.dev), reverse=True)
        on_rung(alive, n)
        if n >= n_examples:
            break
        alive = alive[: max(1, math.ceil(len(alive) / eta))]
        n = min(n * eta, n_examples)
    return alive
