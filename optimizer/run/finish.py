"""The end of a job: pick the best candidate, score it and the baselines on the test split, build the result."""

from __future__ import annotations

from optimizer.errors import BudgetExceeded
from optimizer.run.context import SearchContext
from optimizer.run.events import BudgetStopped
from optimizer.run.scoring import Evaluator, summarize
from optimizer.types import Candidate, RunResult, Score, ScoredPrompt

__all__ = ["finish"]


def _finalists(ctx: SearchContext, none_score: Score, humans: list[Candidate]) -> list[ScoredPrompt]:
    """The best candidate (among those scored on the whole dev set), no instruction, the best human one."""
    ranked = ctx.ranked()
    full = [c for c in ranked if c.dev.n >= len(ctx.dev)]
    best = full[0] if full else (ranked[0] if ranked else None)
    prompts: list[ScoredPrompt] = []
    if best is not None:
        prompts.append(ScoredPrompt(name="best", text=best.text, candidate=best.id, dev=best.dev))
    if none_score.n:
        prompts.append(ScoredPrompt(name="no_instruction", text="", dev=none_score))
    scored_humans = [h for h in humans if h.dev.n >= len(ctx.dev)]
    if scored_humans:
        top = max(scored_humans, key=lambda h: ctx.rank_key(h.dev))
        prompts.append(ScoredPrompt(name="best_human", text=top.text, candidate=top.id, dev=top.dev))
    return prompts


def finish(ctx: SearchContext, evaluator: Evaluator, searcher: str, none_score: Score, humans: list[Candidate],
           stop_reason: str | None, *, test_lp: bool) -> RunResult:
    """Score the finalists on test (journalled, so a resumed finish asks nothing twice) and build the result.

    Args:
        ctx: the run's context.
        evaluator: the run's evaluator.
        searcher: the searcher's name.
        none_score: the no-instruction baseline's dev score.
        humans: the task's instructions with their dev scores.
        stop_reason: why the search stopped early, if it did.
        test_lp: also compute gold log-probabilities on test.

    Returns:
        The result (without timings).
    """
    config, task = ctx.config, ctx.task
    prompts = _finalists(ctx, none_score, humans)
    test = task.test[: config.test_limit] if config.test_limit else task.test
    try:
        ctx.status(f"scoring {len(prompts)} prompts on {len(test)} test examples")
        raw = evaluator.score([p.text for p in prompts], test, "test", accuracy=True, logprob=test_lp)
        for p in prompts:
            records = [raw[p.text][ex.id] for ex in test]
            p.test = summarize(raw[p.text])
            p.test_acc = [r.acc for r in records if r.acc is not None]
            p.test_lp = [r.lp for r in records if r.lp is not None]
    except BudgetExceeded as exc:
        stop_reason = stop_reason or str(exc)
        ctx.record(BudgetStopped(reason=str(exc), phase="test"))
    ledger = ctx.target.ledger
    best = prompts[0] if prompts and prompts[0].name == "best" else None
    return RunResult(
        run_id=ctx.run_id, run_dir=ctx.run_dir, task=task.name, searcher=searcher,
        target=config.target, proposer=config.proposer or config.target, seed=config.seed,
        status="partial" if stop_reason else "complete", stop_reason=stop_reason,
        best=best, baselines=[p for p in prompts if p.name != "best"], human=humans, candidates=ctx.ranked(),
        usage=ledger.snapshot(), calls=ledger.calls, tokens=ledger.tokens, cost_usd=round(ledger.cost, 6),
    )
