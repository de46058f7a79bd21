"""Which prompt ships: the finalists of racing against the incumbent, on dev examples racing never saw.

Taking the maximum of many noisy dev scores inflates the winner's score (the winner's curse), so
the best raced candidates are re-scored on the confirmation examples together with the
incumbent (the user's prompt, else the best human instruction, else no instruction). A
finalist ships only when a one-sided paired test says it is better than the incumbent there,
corrected for the number of finalists by Westfall and Young's step-down max-T permutation
method; otherwise the incumbent ships, with the verdict "no significant improvement". The test
split is never used to choose.

Why max-T rather than Holm: finalists are usually near copies of each other (one instruction
with other demonstrations, or paraphrases), so they win and lose on the same examples. Holm
treats them as unrelated and multiplies the smallest p-value by their number; max-T flips the
signs of every finalist's difference on an example together and compares each finalist with the
null distribution of the largest standardized difference (see :func:`max_t`). It controls the
family-wise error rate as Holm does, whatever the dependence, and when the finalists answer alike
it costs nothing: three identical finalists get the p-value of one.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from scipy.stats import permutation_test  # type: ignore[import-untyped]

from optimizer.run.context import SearchContext
from optimizer.run.scoring import Evaluator, ScoreRecord, summarize
from optimizer.types import Candidate, FinalistTest, Selection

__all__ = ["TEST_NAME", "choose", "holm", "max_t", "paired_p_value", "pareto_front"]

TEST_NAME = ("one-sided paired permutation test (sign flips), corrected over the finalists by step-down max-T "
             "(Westfall-Young)")
RESAMPLES = 9999


def paired_p_value(a: Sequence[float], b: Sequence[float], *, seed: int = 0) -> float:
    """One-sided p-value of "``a`` is better than ``b``" for paired per-example scores.

    The statistic is the mean difference; its null distribution comes from flipping the sign of
    each pair's difference (exact when there are at most ``RESAMPLES`` sign patterns, else Monte
    Carlo with ``seed``), with scipy's ``permutation_test``.

    Args:
        a: per-example scores of the challenger.
        b: per-example scores of the incumbent, same examples in the same order.
        seed: seeds the Monte Carlo resampling.

    Returns:
        The p-value (1.0 when every pair ties).
    """
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if len(x) != len(y):
        raise ValueError(f"paired scores differ in length ({len(x)} and {len(y)})")
    if len(x) == 0 or np.all(x == y):
        return 1.0
    if len(x) == 1:  # two sign patterns: the observed difference and its negation (scipy needs two pairs)
        return 0.5 if x[0] > y[0] else 1.0
    result = permutation_test((x, y), lambda u, v, axis: np.mean(u - v, axis=axis), vectorized=True,
                              permutation_type="samples", alternative="greater", n_resamples=RESAMPLES,
                              rng=np.random.default_rng(seed))
    return float(result.pvalue)


def max_t(diffs: Sequence[Sequence[float]], *, seed: int = 0) -> tuple[list[float], list[float]]:
    """One-sided paired sign-flip tests of several challengers against one incumbent, corrected for their number.

    Each challenger's statistic is its summed paired difference over the root of its summed squares (for one
    challenger, the same order of sign patterns as the mean difference). One sign pattern over the examples
    flips every challenger's difference on an example together, so the null distribution keeps
    their dependence. A challenger's adjusted p-value is the chance, under the null, that the
    largest statistic among it and the challengers ranked below it reaches its observed one
    (Westfall and Young's step-down max-T, made monotone). Exact over every sign pattern when there
    are at most ``RESAMPLES`` of them (pairs where no challenger differs are left out: their signs
    change nothing), else ``RESAMPLES`` random patterns drawn with ``seed``.

    Args:
        diffs: one row per challenger: its per-example score minus the incumbent's, the same examples in the
            same order in every row.
        seed: seeds the random sign patterns.

    Returns:
        The unadjusted and the adjusted p-values, in the input order.
    """
    m = len(diffs)
    if m == 0:
        return [], []
    d = np.asarray(diffs, dtype=float).reshape(m, -1)
    live = d[:, np.any(d != 0, axis=0)]
    k = live.shape[1]
    if k == 0:
        return [1.0] * m, [1.0] * m
    exact = 2**k <= RESAMPLES
    if exact:
        signs = ((np.arange(2**k)[:, None] >> np.arange(k)) & 1) * 2.0 - 1.0
    else:
        signs = np.random.default_rng(seed).choice([-1.0, 1.0], size=(RESAMPLES, k))
    # standardized: each row's sum over the root of its sum of squares (its null spread), so a challenger that
    # differs on many examples does not swamp one that differs on few; a row of ties scores 0 everywhere
    scale = np.sqrt((live**2).sum(axis=1))
    scale[scale == 0] = np.inf
    observed = live.sum(axis=1) / scale
    null = signs @ (live / scale[:, None]).T  # (patterns, challengers)
    tol = 1e-9

    def p_of(hits: np.ndarray) -> float:
        count = int(hits.sum())
        return count / len(signs) if exact else (count + 1) / (len(signs) + 1)

    reach = null >= observed - tol  # ties count as extreme
    raw = [p_of(reach[:, i]) for i in range(m)]
    order = np.argsort(-observed, kind="stable")
    tail = np.maximum.accumulate(null[:, order[::-1]], axis=1)[:, ::-1]  # tail[:, r]: max over order[r:]
    adjusted = [1.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, p_of(tail[:, rank] >= observed[i] - tol))
        adjusted[i] = min(1.0, running)
    return raw, adjusted


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values (family-wise error control), in the input order.

    apo corrected with this before :func:`max_t`; evals/replay_finalists.py replays runs with either.
    """
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted = [1.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted


def _values(records: dict[str, ScoreRecord], scoring: str) -> list[float]:
    if scoring == "logprob":
        return [r.lp if r.lp is not None else -1e9 for r in records.values()]
    return [r.acc if r.acc is not None else 0.0 for r in records.values()]


def choose(ctx: SearchContext, evaluator: Evaluator) -> tuple[Candidate | None, Selection]:
    """Pick the prompt to ship and say why (scores the finalists and the incumbent on the confirmation examples).

    May raise :class:`~optimizer.errors.BudgetExceeded` while scoring; the caller then ships the incumbent.

    Args:
        ctx: the run's context (candidates, incumbent, dev and confirmation examples).
        evaluator: the run's evaluator (journalled, so a resumed run asks nothing twice).

    Returns:
        The shipped candidate (None when nothing was scored) and the selection record.
    """
    cfg, scoring = ctx.config.selection, ctx.config.scoring
    inc = ctx.incumbent
    ranked = ctx.ranked()
    raced = [c for c in ranked if c.dev.n >= len(ctx.dev)]
    sizes = {"train": len(ctx.task.train), "dev": len(ctx.dev), "confirm": len(ctx.confirm)}
    base = Selection(verdict="not tested", incumbent=inc.id if inc else None,
                     incumbent_origin=inc.origin if inc else None, alpha=cfg.alpha, score=scoring, sizes=sizes)
    if not ctx.confirm or inc is None:  # untested: the searcher's best on dev (a baseline incumbent stays a baseline)
        pool = [c for c in ranked if inc is None or c.id != inc.id or inc.origin == "initial"]
        full = [c for c in pool if c.dev.n >= len(ctx.dev)]
        best = full[0] if full else (pool[0] if pool else None)
        base.shipped = best.id if best else None
        if ctx.confirm:
            why = "no incumbent"
        elif cfg.confirm_limit == 0:
            why = "confirmation is off (selection.confirm_limit 0)"
        else:
            why = f"the dev split's {len(ctx.task.dev)} example(s) leave none to set aside to confirm (half are, at " \
                  "least 2 needed)"
        base.note = f"{why}: the best candidate on dev ships untested"
        return best, base
    # finalists: the best raced to the end, then (when the budget cut racing short) the best of the rest
    partial = sorted((c for c in ranked if c.dev.n and c not in raced), key=lambda c: ctx.rank_key(c.dev), reverse=True)
    finalists = [c for c in raced + partial if c.id != inc.id][: cfg.finalists]
    base.test = TEST_NAME
    if not finalists:
        base.verdict, base.shipped = "no significant improvement", inc.id
        base.note = "no candidate other than the incumbent finished racing"
        return inc, base
    ctx.status(f"confirming {len(finalists)} finalists against the incumbent on {len(ctx.confirm)} held-out examples")
    raw = evaluator.score([inc.key] + [f.key for f in finalists], ctx.confirm, "confirm",
                          accuracy=scoring == "accuracy", logprob=scoring == "logprob")
    ref = _values(raw[inc.key], scoring)
    base.incumbent_confirm = summarize(raw[inc.key])
    diffs = [np.subtract(_values(raw[f.key], scoring), ref).tolist() for f in finalists]
    for f, d, p, adj in zip(finalists, diffs, *max_t(diffs, seed=ctx.seed)):
        base.finalists.append(FinalistTest(candidate=f.id, confirm=summarize(raw[f.key]),
                                           diff=round(float(np.mean(d)), 6), p_value=round(p, 6),
                                           p_adjusted=round(adj, 6), significant=adj < cfg.alpha))
    winners = [t for t in base.finalists if t.significant]
    top = max(winners, key=lambda t: t.diff) if winners else None  # the largest significant gain on confirm
    shipped = ctx.candidates[top.candidate] if top else inc
    base.verdict, base.shipped = ("improved" if top else "no significant improvement"), shipped.id
    base.prefer = cfg.prefer
    values = {c.id: _values(raw[c.key], scoring) for c in [inc, *finalists]}
    if cfg.prefer == "shorter":
        shipped = _shortest_not_worse(ctx, shipped, [inc, *finalists], values, base)
    elif cfg.prefer == "instruction" and top is not None:
        shipped = _own_instruction(ctx, inc, shipped, [ctx.candidates[t.candidate] for t in winners], values, base)
    return shipped, base


def _own_instruction(ctx: SearchContext, inc: Candidate, winner: Candidate, better: list[Candidate],
                     values: dict[str, list[float]], sel: Selection) -> Candidate:
    """Among the finalists called better (``better``, each with its confirmation scores in ``values``), the one with
    the largest gain that keeps the incumbent's instruction, when the winner does not beat it significantly
    (uncorrected); else the winner."""
    own = [c for c in better if c.text == inc.text]
    if not own or winner.text == inc.text:
        return winner
    mine = max(own, key=lambda c: float(np.mean(values[c.id])))
    if paired_p_value(values[winner.id], values[mine.id], seed=ctx.seed) < ctx.config.selection.alpha:
        return winner
    sel.shipped = mine.id
    sel.note = (f"--prefer instruction: {mine.id} keeps the incumbent's instruction and is better than the incumbent; "
                f"{winner.id} (another instruction) is not significantly better than it on the confirmation examples")
    return mine


def _shortest_not_worse(ctx: SearchContext, winner: Candidate, pool: list[Candidate],
                        values: dict[str, list[float]], sel: Selection) -> Candidate:
    """The prompt with the fewest tokens among ``pool`` that the winner does not beat significantly (uncorrected)."""
    alpha = ctx.config.selection.alpha
    ok = [c for c in pool if c.id == winner.id
          or paired_p_value(values[winner.id], values[c.id], seed=ctx.seed) >= alpha]
    short = min(ok, key=lambda c: (ctx.prompt_tokens(c), c.id != winner.id))
    sel.prefer = "shorter"
    if short.id != winner.id:
        significant = {t.candidate for t in sel.finalists if t.significant}
        sel.verdict = ("improved" if short.id in significant else "no significant improvement"
                       if short.id == sel.incumbent else "shorter, not significantly worse")
        sel.note = (f"--prefer shorter: {short.id} ({ctx.prompt_tokens(short)} prompt tokens) is not significantly "
                    f"worse than {winner.id} ({ctx.prompt_tokens(winner)} tokens) on the confirmation examples")
        sel.shipped = short.id
    return short


def pareto_front(cands: Sequence[Candidate], key: Callable[[Candidate], tuple[float, float]]) -> list[Candidate]:
    """The candidates no other beats on both accuracy and length, shortest first.

    Args:
        cands: candidates with ``prompt_tokens`` set.
        key: their score's sort key (higher is better; see optimizer.run.racing.rank_key).

    Returns:
        The front: each one scores strictly higher than every shorter one.
    """
    front: list[Candidate] = []
    for c in sorted(cands, key=lambda c: (c.prompt_tokens or 0, tuple(-v for v in key(c)))):
        if not front or key(c) > key(front[-1]):
            front.append(c)
    return front
