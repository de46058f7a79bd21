"""Reflection: error-driven rewrites of the best prompts (ProTeGi's textual gradients, GEPA's reflective mutation).

Each round, every prompt of the beam (first the incumbent alone) runs on a fresh minibatch of
*training* examples; the ones it gets wrong, with the target's answer and the expected output,
go to the proposer twice: first for a critique (what the instruction gets wrong), then for a
rewrite that fixes it. The rewrites keep their parent's demonstrations and race with the beam
over dev; the best ``beam`` survive to the next round. Dev and test examples are never shown to
the proposer.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from typing import TYPE_CHECKING, Literal

from optimizer.models.base import CHAT, GENERATE
from optimizer.search.ape.prompts import clean_instruction
from optimizer.settings import ReflectConfig
from optimizer.types import Candidate, Example, GenerateRequest, Message

if TYPE_CHECKING:
    from optimizer.run.context import SearchContext

__all__ = ["CRITIQUE_TAIL", "REFLECT_INTRO", "REWRITE_TAIL", "Failure", "ReflectSearch", "critique_prompt",
           "rewrite_prompt"]

REFLECT_INTRO = ("I gave a friend an instruction and some inputs. The friend followed the instruction, but the "
                 "outputs below are wrong.\n\n")
CRITIQUE_TAIL = "The instruction led to these mistakes because"
REWRITE_TAIL = "A better instruction, which gets every one of these right, was to"

Failure = tuple[Example, str]
"""A training example and the target's wrong answer to it."""


def _body(instruction: str, failures: Sequence[Failure]) -> str:
    shown = instruction.strip() or "(no instruction)"
    cases = "".join(f"Input: {ex.input}\nFriend's output: {got}\nCorrect output: {ex.output}\n\n"
                    for ex, got in failures)
    return f"{REFLECT_INTRO}Instruction: {shown}\n\n{cases}"


def critique_prompt(instruction: str, failures: Sequence[Failure], style: Literal["completion", "chat"], *,
                    seed: int, sample_index: int, temperature: float) -> GenerateRequest:
    """The meta-prompt asking why ``instruction`` produced the wrong answers in ``failures``."""
    request = partial(GenerateRequest, max_tokens=64, temperature=temperature, seed=seed, sample_index=sample_index)
    body = _body(instruction, failures)
    if style == "chat":
        text = body + "Explain in one or two sentences what the instruction gets wrong or leaves out."
        return request(messages=(Message(role="user", content=text),))
    return request(prompt=body + CRITIQUE_TAIL, stop=("\n\n",))


def rewrite_prompt(instruction: str, failures: Sequence[Failure], critique: str,
                   style: Literal["completion", "chat"], *, seed: int, sample_index: int,
                   temperature: float) -> GenerateRequest:
    """The meta-prompt asking for an instruction that fixes ``failures``, given the critique."""
    request = partial(GenerateRequest, max_tokens=64, temperature=temperature, seed=seed, sample_index=sample_index)
    body = _body(instruction, failures) + f"{CRITIQUE_TAIL} {critique.strip()}\n\n"
    if style == "chat":
        text = body + "Write a better instruction that gets every one of these right. Reply with it only, in one line."
        return request(messages=(Message(role="user", content=text),))
    return request(prompt=body + REWRITE_TAIL, stop=("\n",))


class ReflectSearch:
    """The ``reflect`` searcher.

    Args:
        config: its parameters.
    """

    name = "reflect"
    requires = frozenset({GENERATE})

    def __init__(self, config: ReflectConfig | None = None) -> None:
        self.config = config or ReflectConfig()

    def run(self, ctx: SearchContext) -> None:
        """Critique, rewrite and race, ``rounds`` times, starting from the incumbent."""
        if ctx.incumbent is None:
            raise ValueError("the reflect searcher needs the run's incumbent (set by the engine)")
        self.refine(ctx, [ctx.incumbent], first_round=1)

    def refine(self, ctx: SearchContext, beam: Sequence[Candidate], *, first_round: int) -> list[Candidate]:
        """Reflect on ``beam`` for the configured rounds; the last race's survivors, best first."""
        cfg = self.config
        ranked = list(beam)
        for round_ in range(first_round, first_round + cfg.rounds):
            beam = ranked[: cfg.beam]
            fresh = self.reflect(ctx, beam, round=round_)
            if not fresh:
                ctx.status(f"round {round_}: no failures left to reflect on")
                break
            ranked = ctx.race(list(beam) + fresh, round=round_)
        return ranked

    def failures(self, ctx: SearchContext, cand: Candidate, *, round: int) -> list[Failure]:
        """The candidate's wrong answers on this round's minibatches of training examples: one minibatch, and
        further ones (up to ``max_minibatches``) while every answer so far is right."""
        shown = {ex.id for ex in ctx.demonstrations(cand)}
        pool = [ex for ex in ctx.task.train if ex.id not in shown]
        size = self.config.minibatch
        batch = ctx.rng(f"reflect-minibatch:{round}").sample(pool, min(size, len(pool)))
        for i in range(self.config.max_minibatches):
            if not batch:
                return []
            outcomes = ctx.outcomes(cand, batch, "train")
            wrong = [(ex, outcomes[ex.id].output or "") for ex in batch if (outcomes[ex.id].acc or 0.0) < 1.0]
            if wrong:
                return wrong
            seen = {ex.id for ex in batch}
            pool = [ex for ex in pool if ex.id not in seen]
            batch = ctx.rng(f"reflect-minibatch:{round}:{i + 1}").sample(pool, min(size, len(pool)))
        return []

    def reflect(self, ctx: SearchContext, beam: Sequence[Candidate], *, round: int) -> list[Candidate]:
        """One round's rewrites of every beam prompt, added as candidates."""
        cfg = self.config
        style = cfg.proposal_style
        if style == "auto":
            style = "chat" if ctx.proposer.supports(CHAT) else "completion"
        jobs: list[tuple[Candidate, list[Failure], int]] = []
        for parent in beam:
            wrong = self.failures(ctx, parent, round=round)
            rng = ctx.rng(f"reflect-show:{parent.id}:{round}")
            for j in range(cfg.rewrites if wrong else 0):
                jobs.append((parent, rng.sample(wrong, min(cfg.failures_shown, len(wrong))), j))
        if not jobs:
            return []
        ctx.status(f"round {round}: critiquing {len(jobs)} prompts from their training failures")
        seed, temp = ctx.seed + 1000 * round, cfg.temperature
        critiques = ctx.generate_proposals(
            [critique_prompt(p.text, shown, style, seed=seed, sample_index=j, temperature=temp)
             for p, shown, j in jobs],
            origin="critique", parents=[p.id for p, _, _ in jobs], round=round)
        rewrites = ctx.generate_proposals(
            [rewrite_prompt(p.text, shown, _first_paragraph(c), style, seed=seed, sample_index=j, temperature=temp)
             for (p, shown, j), c in zip(jobs, critiques)],
            origin="reflection", parents=[p.id for p, _, _ in jobs], round=round)
        fresh = []
        for (parent, _, _), raw in zip(jobs, rewrites):
            text = clean_instruction(raw, forward=True, max_chars=cfg.max_instruction_chars, first_sentence=False)
            cand = ctx.add(text, origin="reflection", parent=parent.id, round=round, demos=parent.demos)
            if cand is not None:
                fresh.append(cand)
        return fresh


def _first_paragraph(text: str) -> str:
    return text.strip().split("\n\n")[0].strip()[:600]
