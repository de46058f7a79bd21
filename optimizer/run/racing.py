"""Ranking and racing: the one rule that orders scores, and successive halving over dev examples.

Any searcher races its candidates through :meth:`SearchContext.race
<optimizer.run.context.SearchContext.race>`, which calls :func:`successive_halving` with the run's
:class:`~optimizer.config.RacingConfig`. Reports rank with the same :func:`rank_key`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from optimizer.types import Candidate, Score

__all__ = ["bound_width", "drop_dominated", "rank_key", "successive_halving"]


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


def bound_width(n: int, delta: float) -> float:
    """Hoeffding half-width of a mean of ``n`` scores in [0, 1] at confidence ``1 - delta`` (two-sided)."""
    return math.sqrt(math.log(2 / delta) / (2 * n)) if n else math.inf


def drop_dominated(ranked: list[Candidate], delta: float) -> list[Candidate]:
    """The candidates (best first) whose accuracy's upper confidence bound reaches the leader's lower bound.

    Bounds are Hoeffding's at ``delta`` divided by the field's size (a union bound over the comparisons), so the
    leader itself always stays, and so does any candidate the evidence cannot yet separate from it.
    """
    if len(ranked) < 2 or ranked[0].dev.acc is None:
        return ranked
    each = delta / len(ranked)
    floor = ranked[0].dev.acc - bound_width(ranked[0].dev.n, each)
    return [c for c in ranked if c is ranked[0] or (c.dev.acc is not None and
                                                    c.dev.acc + bound_width(c.dev.n, each) >= floor)]


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
) -> list[Candidate]:
    """Race candidates: all on the first few examples, the best 1/eta on eta times as many, up to all.

    Every candidate keeps (in ``candidate.dev``) the score over the most examples it reached. With ``rule``
    ``bounds`` a rung drops instead every candidate whose accuracy's upper confidence bound is below the leader's
    lower bound (:func:`drop_dominated`), keeping the rest, so a candidate leaves only on evidence; ``both`` does
    that and then halves.

    Args:
        candidates: the field (duplicates by id are raced once).
        n_examples: dev examples available.
        evaluate: ``(candidates, n) -> {candidate key: Score}`` on the first ``n`` examples.
        rank: sort key of a score (see :func:`rank_key`).
        min_examples: examples in the first rung.
        eta: keep 1/eta of the field, multiply the examples by eta.
        on_rung: called after each rung with the ranked field and ``n`` (the engine records it).
        rule: ``halving``, ``bounds`` or ``both``.
        delta: the bounds' error probability per rung (with ``bounds`` or ``both``).

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
        if rule in ("bounds", "both"):
            alive = drop_dominated(alive, delta)
        if rule in ("halving", "both"):
            alive = alive[: max(1, math.ceil(len(alive) / eta))]
        n = min(n * eta, n_examples)
    return alive
