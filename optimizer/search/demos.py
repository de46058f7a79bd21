"""Demonstration search: which training examples to show, how many, and in what order.

In the manner of DSPy's BootstrapFewShotWithRandomSearch: keep the instruction (the incumbent's,
or each instruction given), and race demonstration sets of several sizes. Half the sets are
random training examples; the other half are *bootstrapped*: training examples the target
already answers right under the instruction (found by running it on a sample of the train
split, never dev or test). Beside them race *nearest* demonstrations, chosen per input: the k
training examples whose inputs are most like it (KATE; DSPy's KNNFewShot; see
:mod:`optimizer.tasks.nearest`). The best fixed sets are then tried in other orders and raced again.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from optimizer.models.base import GENERATE
from optimizer.settings import DemosConfig
from optimizer.tasks.nearest import nearest_demos, nearest_k
from optimizer.types import Candidate, Example

if TYPE_CHECKING:
    from optimizer.run.context import SearchContext

__all__ = ["DemoSearch"]

BEST_REORDERED = 2
"""How many of the best sets are tried in other orders."""
ATTEMPTS = 5
"""Draws of a set before giving up on a new one (small train splits run out of distinct sets)."""


class DemoSearch:
    """The ``demos`` searcher (and APE's ``demo_search`` step).

    Args:
        config: its parameters.
        reorderings: other orders tried for each of the best sets after the first race.
    """

    name = "demos"
    requires = frozenset({GENERATE})

    def __init__(self, config: DemosConfig | None = None, reorderings: int = 2) -> None:
        self.config = config or DemosConfig()
        self.reorderings = reorderings

    def run(self, ctx: SearchContext) -> None:
        """Race demonstration sets for the incumbent's instruction."""
        if ctx.incumbent is None:
            raise ValueError("the demos searcher needs the run's incumbent (set by the engine)")
        self.search(ctx, [ctx.incumbent], round=0)

    def search(self, ctx: SearchContext, bases: Sequence[Candidate], *, round: int) -> list[Candidate]:
        """Race the bases with demonstration sets for each, then reorderings of the best; survivors, best first.

        Args:
            ctx: the search context.
            bases: the prompts whose instructions get new demonstrations.
            round: the search round of the first race (reorderings race in the next).

        Returns:
            The survivors of the last race, best first.
        """
        field = list(bases)
        for base in bases:
            field += self.propose(ctx, base, round=round)
        ranked = ctx.race(field, round=round)
        reordered = [c for best in ranked[:BEST_REORDERED] if best.demos and len(best.demos) > 1
                     and nearest_k(best.demos) is None
                     for c in self._reorder(ctx, best, round=round + 1)]
        if reordered:
            ranked = ctx.race(ranked[:BEST_REORDERED] + reordered, round=round + 1)
        return ranked

    def propose(self, ctx: SearchContext, base: Candidate, *, round: int) -> list[Candidate]:
        """Demonstration sets for ``base``'s instruction, as new candidates (random and bootstrapped, then each
        input's nearest training examples for every size in ``nearest``)."""
        fresh = []
        for ids in self.draw(ctx, base, round=round, taken=lambda ids: ctx.find(base.text, ids) is not None):
            cand = ctx.add(base.text, origin="demos", parent=base.id, round=round, demos=ids)
            if cand is not None:
                fresh.append(cand)
        n_train = len(ctx.task.train)
        for k in dict.fromkeys(min(k, n_train) for k in self.config.nearest if n_train):
            cand = ctx.add(base.text, origin="nearest", parent=base.id, round=round, demos=nearest_demos(k))
            if cand is not None:
                fresh.append(cand)
        return fresh

    def draw(self, ctx: SearchContext, base: Candidate, *, round: int,
             taken: Callable[[list[str]], bool] = lambda ids: False) -> list[list[str]]:
        """Distinct demonstration sets (training example ids, in order): random ones and bootstrapped ones.

        Args:
            ctx: the search context.
            base: the prompt whose instruction bootstraps (its right answers on train).
            round: search round (part of the random stream).
            taken: whether a set is already in use (it is then drawn again, a few times at most).

        Returns:
            Up to ``sets`` sets.
        """
        cfg = self.config
        train = list(ctx.task.train)
        if not train:
            return []
        rng = ctx.rng(f"demos:{base.id}:{round}")
        n_boot = round_half(cfg.sets * cfg.bootstrapped)
        good = self.bootstrap(ctx, base, rng) if n_boot else []
        ctx.status(f"round {round}: {cfg.sets} demonstration sets for {base.id}"
                   + (f" ({len(good)} bootstrapped examples)" if n_boot else ""))
        sets: list[list[str]] = []
        for i in range(cfg.sets):
            k = min(cfg.k[i % len(cfg.k)], len(train))
            for _ in range(ATTEMPTS):  # draw again when the set is one already in use
                chosen = rng.sample(good, min(k, len(good))) if i < n_boot else []
                rest = [ex for ex in train if ex not in chosen]
                chosen += rng.sample(rest, k - len(chosen))
                rng.shuffle(chosen)
                ids = [ex.id for ex in chosen]
                if ids not in sets and not taken(ids):
                    sets.append(ids)
                    break
        return sets

    def bootstrap(self, ctx: SearchContext, base: Candidate, rng: random.Random) -> list[Example]:
        """Training examples the target answers right under ``base`` (its own demonstrations excluded)."""
        shown = {ex.id for ex in ctx.demonstrations(base)}
        pool = [ex for ex in ctx.task.train if ex.id not in shown]
        pool = rng.sample(pool, min(self.config.bootstrap_pool, len(pool)))
        if not pool:
            return []
        outcomes = ctx.outcomes(base, pool, "train")
        return [ex for ex in pool if (outcomes[ex.id].acc or 0.0) >= 1.0]

    def _reorder(self, ctx: SearchContext, best: Candidate, *, round: int) -> list[Candidate]:
        rng = ctx.rng(f"reorder:{best.id}")
        out = []
        for _ in range(self.reorderings):
            ids = list(best.demos or ())
            rng.shuffle(ids)
            cand = ctx.add(best.text, origin="reorder", parent=best.id, round=round, demos=ids)
            if cand is not None:
                out.append(cand)
        return out


def round_half(x: float) -> int:
    """``x`` rounded half up (Python's round is half-to-even)."""
    return int(x + 0.5)
