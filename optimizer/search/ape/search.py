"""APE (Zhou et al. 2022, arXiv 2211.01910): forward generation, racing, iterative Monte Carlo.

Round 0 shows the proposer several random demonstration subsets in the forward-generation
meta-prompt and samples instructions from each; the candidates are raced over dev examples
(successive halving, the engine's racing service). Each later round asks for variations of
the current top-k that keep their meaning, and races them together with the top-k.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from optimizer.config import APEConfig
from optimizer.models.base import CHAT, GENERATE
from optimizer.search.ape.prompts import clean_instruction, forward_prompt, variation_prompt
from optimizer.types import Candidate, GenerateRequest

if TYPE_CHECKING:
    from optimizer.run.context import SearchContext

__all__ = ["APESearch"]


class APESearch:
    """The APE searcher.

    Args:
        config: its parameters.
    """

    name = "ape"
    requires = frozenset({GENERATE})

    def __init__(self, config: APEConfig | None = None) -> None:
        self.config = config or APEConfig()

    def run(self, ctx: SearchContext) -> None:
        """Propose, race, then refine for ``rounds`` rounds."""
        cfg = self.config
        style = cfg.proposal_style
        if style == "auto":
            style = "chat" if ctx.proposer.supports(CHAT) else "completion"
        rng = ctx.rng("proposal-subsets")
        train = ctx.task.train
        per_subset = -(-cfg.candidates // cfg.subsets)
        requests: list[GenerateRequest] = []
        for subset in range(cfg.subsets):
            demos = rng.sample(train, min(cfg.demos_per_proposal, len(train)))
            for sample in range(per_subset):
                if len(requests) < cfg.candidates:
                    requests.append(forward_prompt(demos, style, seed=ctx.seed + subset, sample_index=sample,
                                                   temperature=cfg.temperature))
        first = self._propose(ctx, requests, origin="forward", parents=[None] * len(requests), round=0)
        incumbent = [ctx.incumbent] if ctx.incumbent is not None else []
        ranked = ctx.race(first + incumbent, round=0)
        for round_ in range(1, cfg.rounds + 1):
            top = ranked[: cfg.top_k]
            if not top:
                break
            requests, parents = [], []
            for parent in (c for c in top if c.text.strip()):
                for sample in range(cfg.variations):
                    requests.append(variation_prompt(parent.text, style, seed=ctx.seed + 1000 * round_,
                                                     sample_index=sample, temperature=cfg.temperature))
                    parents.append(parent.id)
            fresh = self._propose(ctx, requests, origin="variation", parents=parents, round=round_)
            ranked = ctx.race(top + fresh, round=round_)
        if cfg.demo_search and ranked:
            from optimizer.search.demos import DemoSearch

            DemoSearch(ctx.config.demos).search(ctx, ranked[:1], round=cfg.rounds + 1)

    def _propose(self, ctx: SearchContext, requests: Sequence[GenerateRequest], *, origin: str,
                 parents: Sequence[str | None], round: int) -> list[Candidate]:
        """Ask the proposer, clean each answer into an instruction, and add the new ones as candidates."""
        raws = ctx.generate_proposals(requests, origin=origin, parents=parents, round=round)
        fresh = []
        for raw, parent in zip(raws, parents):
            text = clean_instruction(raw, forward=origin == "forward", max_chars=self.config.max_instruction_chars)
            cand = ctx.add(text, origin=origin, parent=parent, round=round)
            if cand is not None:
                fresh.append(cand)
        return fresh
