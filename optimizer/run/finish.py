"""The end of a job: choose the prompt to ship (optimizer.run.selection), score it and the baselines on test."""

from __future__ import annotations

from optimizer.errors import BudgetExceeded, Interrupted
from optimizer.run.context import SearchContext
from optimizer.run.events import BudgetStopped
from optimizer.run.scoring import Evaluator, summarize
from optimizer.run.selection import choose, pareto_front
from optimizer.search.soft.labels import adapter_folder
from optimizer.tasks.templates import multiline_answers
from optimizer.types import Candidate, Example, RunResult, Score, ScoredPrompt, Selection, prompt_key

__all__ = ["finish"]


def _prompt(ctx: SearchContext, name: str, cand: Candidate) -> ScoredPrompt:
    return ScoredPrompt(name=name, text=cand.text, candidate=cand.id, demos=cand.demos,
                        demo_examples=ctx.demonstrations(cand), dev=cand.dev, prompt_tokens=ctx.prompt_tokens(cand),
                        adapter=adapter_folder(ctx.config.searcher, cand.text))


def _lengths(ctx: SearchContext, prompts: list[ScoredPrompt], test: list) -> list[str]:
    """Set every candidate's prompt tokens and each reported prompt's tokens per example; the Pareto front."""
    for c in ctx.candidates.values():
        c.prompt_tokens = ctx.prompt_tokens(c)
    if test:
        rest = sum(ctx.count_tokens(f"Input: {ex.input}\nOutput:") for ex in test) / len(test)
        for p in prompts:
            if p.prompt_tokens is None:
                p.prompt_tokens = ctx.prompt_tokens(Candidate(id="-", text=p.text, origin="-", demos=p.demos))
            p.tokens_per_example = round(p.prompt_tokens + rest, 1)
    raced = [c for c in ctx.candidates.values() if c.dev.n >= len(ctx.dev)]
    return [c.id for c in pareto_front(raced, lambda c: ctx.rank_key(c.dev))]


def _reported(ctx: SearchContext, shipped: Candidate | None, selection: Selection, none_score: Score,
              humans: list[Candidate]) -> list[ScoredPrompt]:
    """The prompts scored on test: the shipped one, the incumbent, no instruction, the best human, the best on dev."""
    prompts: list[ScoredPrompt] = []
    if shipped is not None:
        prompts.append(_prompt(ctx, "best", shipped))
    inc = ctx.incumbent  # a human or no-instruction incumbent is reported as best_human / no_instruction
    if inc is not None and inc.origin == "initial" and (shipped is None or inc.id != shipped.id):
        prompts.append(_prompt(ctx, "incumbent", inc))
    if none_score.n:
        prompts.append(ScoredPrompt(name="no_instruction", text="", demo_examples=list(ctx.fixed_demos),
                                    dev=none_score))
    scored_humans = [h for h in humans if h.dev.n >= len(ctx.dev)]
    if scored_humans:
        top = max(scored_humans, key=lambda h: ctx.rank_key(h.dev))
        prompts.append(_prompt(ctx, "best_human", top))
    raced = [c for c in ctx.ranked() if c.dev.n >= len(ctx.dev)]
    if raced and shipped is not None and raced[0].id not in {shipped.id, inc.id if inc else None}:
        prompts.append(_prompt(ctx, "best_dev", raced[0]))
    confirm = {t.candidate: t.confirm for t in selection.finalists}
    as_incumbent = {"initial": "incumbent", "human": "best_human", "none": "no_instruction"}.get(
        selection.incumbent_origin or "")
    for p in prompts:
        is_incumbent = p.candidate == selection.incumbent or p.name == as_incumbent
        p.confirm = confirm.get(p.candidate or "") or (selection.incumbent_confirm if is_incumbent else None)
    return prompts


def _select(ctx: SearchContext, evaluator: Evaluator,
            stop_reason: str | None) -> tuple[Candidate | None, Selection, str | None, bool]:
    """The shipped candidate, the selection record, the stop reason and whether a Ctrl-C stopped it.

    A budget stop or an interruption during confirmation ships the incumbent (``best_dev`` then reports the best
    candidate on dev so far).
    """
    try:
        shipped, selection = choose(ctx, evaluator)
    except (BudgetExceeded, Interrupted) as exc:
        interrupted = isinstance(exc, Interrupted)
        if interrupted:
            note = ("interrupted before the finalists were confirmed: the incumbent ships for now (best_dev is the "
                    f"best prompt on dev so far); `apo resume {ctx.run_id}` finishes the selection")
        else:
            ctx.record(BudgetStopped(reason=str(exc), phase="confirm"))
            note = "the budget ran out before the finalists were confirmed: the incumbent ships"
        inc = ctx.incumbent
        selection = Selection(verdict="not tested", incumbent=inc.id if inc else None,
                              incumbent_origin=inc.origin if inc else None, shipped=inc.id if inc else None,
                              sizes={"dev": len(ctx.dev), "confirm": len(ctx.confirm)}, note=note)
        return inc, selection, stop_reason or str(exc), interrupted
    return shipped, selection, stop_reason, False


def _score_test(ctx: SearchContext, evaluator: Evaluator, prompts: list[ScoredPrompt], test: list[Example],
                test_lp: bool, stop_reason: str | None, interrupted: bool) -> tuple[str | None, bool]:
    """Score the reported prompts on test. Under a budget of calls, tokens or cost: answers first for every prompt
    (the shipped one first), then gold log-probabilities, so that a tight budget spends itself on the shipped prompt's
    accuracy before anything else; without one, both kinds of each prompt together, the shipped prompt first.
    A prompt the budget (or a Ctrl-C) stops is left unscored, and the next ones are still scored from the journal
    or the response cache where they can be."""
    budget_noted = False
    limits = ctx.config.budget
    if test_lp and limits.max_calls is None and limits.max_tokens is None and limits.max_cost is None:
        # no budget to spend on accuracy first: both kinds of each prompt batch by batch (the log-probability pass
        # of a local model keeps each row's keys and values for its answer), then the loops below read the journal
        for i, p in enumerate(prompts):
            ctx.status(f"scoring prompt {i + 1} of {len(prompts)} ({p.name}) on {len(test)} test examples")
            try:
                evaluator.score([prompt_key(p.text, p.demos)], test, "test", accuracy=True, logprob=True)
            except (Interrupted, BudgetExceeded):
                break  # the loops below record why
    for kind in ("accuracy", "logprob") if test_lp else ("accuracy",):
        for i, p in enumerate(prompts):
            if kind == "logprob" and p.test is None:
                continue
            ctx.status(f"scoring prompt {i + 1} of {len(prompts)} ({p.name}) on {len(test)} test examples"
                       + (" (gold log-probabilities)" if kind == "logprob" else ""))
            key = prompt_key(p.text, p.demos)
            try:
                raw = evaluator.score([key], test, "test", accuracy=kind == "accuracy", logprob=kind == "logprob")[key]
            except Interrupted as exc:
                stop_reason, interrupted = stop_reason or str(exc), True
                continue
            except BudgetExceeded as exc:
                stop_reason = stop_reason or str(exc)
                if not budget_noted:
                    ctx.record(BudgetStopped(reason=str(exc), phase="test"))
                    budget_noted = True
                continue
            records = [raw[ex.id] for ex in test]
            if kind == "accuracy":
                p.test = summarize(raw)
                p.test_acc = [r.acc for r in records if r.acc is not None]
            else:
                p.test = p.test.model_copy(update={"lp": summarize(raw).lp}) if p.test else summarize(raw)
                p.test_lp = [r.lp for r in records if r.lp is not None]
    return stop_reason, interrupted


def finish(ctx: SearchContext, evaluator: Evaluator, searcher: str, none_score: Score, humans: list[Candidate],
           stop_reason: str | None, *, test_lp: bool, interrupted: bool = False) -> RunResult:
    """Score the finalists on test (journalled, so a resumed finish asks nothing twice) and build the result.

    After a Ctrl-C (the ledger refuses new model calls) only what the journal or the response cache holds is
    scored: the result, status ``interrupted``, costs nothing more, and ``apo resume`` completes it.

    Args:
        ctx: the run's context.
        evaluator: the run's evaluator.
        searcher: the searcher's name.
        none_score: the no-instruction baseline's dev score.
        humans: the task's instructions with their dev scores.
        stop_reason: why the search stopped early, if it did.
        test_lp: also compute gold log-probabilities on test.
        interrupted: the search was stopped by a Ctrl-C.

    Returns:
        The result (without timings).
    """
    config, task = ctx.config, ctx.task
    shipped, selection, stop_reason, stopped = _select(ctx, evaluator, stop_reason)
    interrupted = interrupted or stopped
    prompts = _reported(ctx, shipped, selection, none_score, humans)
    test = task.test[: config.test_limit] if config.test_limit else task.test
    selection.sizes["test"] = len(test)
    pareto = _lengths(ctx, prompts, list(test))
    stop_reason, interrupted = _score_test(ctx, evaluator, prompts, list(test), test_lp, stop_reason, interrupted)
    ledger = ctx.target.ledger
    best = prompts[0] if prompts and prompts[0].name == "best" else None
    return RunResult(
        run_id=ctx.run_id, run_dir=ctx.run_dir, task=task.name, searcher=searcher,
        target=config.target, proposer=config.proposer or config.target, seed=config.seed,
        status="interrupted" if interrupted else "partial" if stop_reason else "complete", stop_reason=stop_reason,
        best=best, baselines=[p for p in prompts if p.name != "best"], selection=selection, pareto=pareto,
        human=humans, candidates=ctx.ranked(),
        usage=ledger.snapshot(), calls=ledger.calls, tokens=ledger.tokens, cost_usd=round(ledger.cost, 6),
        multiline_answers=multiline_answers(task),
    )
