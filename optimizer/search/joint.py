"""Joint instruction × demonstration search, in the manner of MIPROv2 (Opsahl-Ong et al. 2024, DSPy).

Two variables: which instruction (the incumbent's and APE-style proposals written from
training demonstrations) and which demonstration set (the run's own, and the ``demos``
searcher's random and bootstrapped sets). A Bayesian optimizer (optuna's TPE sampler) picks a
combination per trial and observes its score on a small random minibatch of raced dev
examples. The combinations with the best mean minibatch score are then raced on the full dev
set with the incumbent, each beside the same demonstrations under the incumbent's instruction:
on a small target the demonstrations often carry the gain, and then the instruction the user
wrote can keep it, instead of whatever proposal happened to be paired with them.

Every minibatch score goes through the run's journal, and the sampler is seeded, so a resumed
job asks the same trials again and gets every answer from the log.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from optimizer.models.base import CHAT, GENERATE
from optimizer.run.events import SearcherNote
from optimizer.search.ape.prompts import clean_instruction, forward_prompt
from optimizer.search.demos import DemoSearch
from optimizer.settings import DemosConfig, JointConfig
from optimizer.tasks.templates import normalize_instruction
from optimizer.types import Candidate, GenerateRequest, prompt_key

if TYPE_CHECKING:
    from optimizer.run.context import SearchContext

__all__ = ["JointSearch"]

Combo = tuple[int, int]
"""(instruction index, demonstration-set index)."""


class JointSearch:
    """The ``joint`` searcher.

    Args:
        config: its parameters.
        demos: how demonstration sets are drawn (the ``demos`` section of the run configuration).
    """

    name = "joint"
    requires = frozenset({GENERATE})

    def __init__(self, config: JointConfig | None = None, demos: DemosConfig | None = None) -> None:
        self.config = config or JointConfig()
        self.demos = demos or DemosConfig(sets=self.config.demo_sets)

    def run(self, ctx: SearchContext) -> None:
        """Propose instructions and demonstration sets, run the TPE trials, race the best combinations."""
        inc = ctx.incumbent
        if inc is None:
            raise ValueError("the joint searcher needs the run's incumbent (set by the engine)")
        instructions = self.instructions(ctx, inc)
        sets: list[list[str] | None] = [list(inc.demos) if inc.demos is not None else None]
        drawn = DemoSearch(self.demos.model_copy(update={"sets": self.config.demo_sets})).draw(ctx, inc, round=0)
        sets += [s for s in drawn if s not in sets]
        scores = self.trials(ctx, instructions, sets)
        means = {c: sum(v.values()) / len(v) for c, v in scores.items()}
        ranked = sorted(scores, key=lambda c: (means[c], len(scores[c])), reverse=True)
        field = [inc]
        for i, j in ranked[: self.config.top_combinations]:
            cand = ctx.add(instructions[i], origin="joint", parent=None, round=1, demos=sets[j])
            cand = cand or ctx.find(instructions[i], sets[j])
            if cand is not None and cand not in field:
                field.append(cand)
            if cand is not None and i != 0:  # the same demonstrations under the incumbent's instruction
                own = ctx.add(instructions[0], origin="joint", parent=cand.id, round=1, demos=sets[j])
                own = own or ctx.find(instructions[0], sets[j])
                if own is not None and own not in field:
                    field.append(own)
        ctx.record(SearcherNote(searcher=self.name, kind="trials", data={
            "instructions": len(instructions), "demo_sets": len(sets), "trials": self.config.trials,
            "top": [{"instruction": i, "demos": j, "minibatch_mean": round(means[(i, j)], 4),
                     "examples": len(scores[(i, j)])} for i, j in ranked[: self.config.top_combinations]]}))
        ctx.race(field, round=1)

    def instructions(self, ctx: SearchContext, inc: Candidate) -> list[str]:
        """The incumbent's instruction and the proposer's instructions written from training demonstrations."""
        cfg = self.config
        style = cfg.proposal_style
        if style == "auto":
            style = "chat" if ctx.proposer.supports(CHAT) else "completion"
        rng = ctx.rng("joint-proposals")
        train = list(ctx.task.train)
        requests: list[GenerateRequest] = []
        for i in range(cfg.instructions if train else 0):
            demos = rng.sample(train, min(cfg.demos_per_proposal, len(train)))
            requests.append(forward_prompt(demos, style, seed=ctx.seed + i, sample_index=i,
                                           temperature=cfg.temperature))
        raws = ctx.generate_proposals(requests, origin="forward", parents=[None] * len(requests), round=0)
        out, seen = [inc.text], {normalize_instruction(inc.text)}
        for raw in raws:
            text = clean_instruction(raw, forward=True, max_chars=cfg.max_instruction_chars)
            if text and normalize_instruction(text) not in seen:
                seen.add(normalize_instruction(text))
                out.append(text)
        return out

    def trials(self, ctx: SearchContext, instructions: list[str],
               sets: list[list[str] | None]) -> dict[Combo, dict[str, float]]:
        """Run the TPE trials; every combination tried, with its score on each dev example it met."""
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        cfg = self.config
        study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(
            seed=ctx.seed, multivariate=True, n_startup_trials=min(cfg.startup_trials, cfg.trials)))
        seen: dict[Combo, dict[str, float]] = {}
        for t in range(cfg.trials):
            trial = study.ask()
            combo = (trial.suggest_categorical("instruction", list(range(len(instructions)))),
                     trial.suggest_categorical("demos", list(range(len(sets)))))
            batch = ctx.rng(f"joint-minibatch:{t}").sample(ctx.dev, min(cfg.minibatch, len(ctx.dev)))
            ctx.status(f"trial {t + 1}/{cfg.trials}: instruction {combo[0]}, demonstration set {combo[1]} "
                       f"on {len(batch)} dev examples")
            key = prompt_key(instructions[combo[0]], sets[combo[1]])
            records = ctx.records(key, batch, "dev")
            seen.setdefault(combo, {}).update(records)
            study.tell(trial, sum(records.values()) / len(records))
        return seen
