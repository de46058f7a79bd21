"""What a searcher sees: the :class:`Searcher` protocol and the :class:`SearchContext` the engine hands it.

A searcher proposes candidates and observes their scores; the context owns everything else:
the journal (nothing is asked of a model twice, even across a resume), the budget (every
model call may raise :class:`~optimizer.errors.BudgetExceeded`, which ends the search
gracefully), racing, the run log and progress. Searchers never open files, load models or
own retries.

Example:
    A searcher, defined anywhere, that races the task's own instructions and one rewrite of
    each (``apo`` runs it with ``optimize(task, searcher=HumanRewrites())``)::

        class HumanRewrites:
            name = "human-rewrites"
            requires = frozenset({"generate"})

            def run(self, ctx):
                field = [ctx.add(t, origin="human") for t in ctx.task.instructions]
                field += [ctx.add(t.upper(), origin="rewrite") for t in ctx.task.instructions]
                ctx.race([c for c in field if c is not None], round=0)
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any, Protocol, TypeVar, runtime_checkable

from optimizer.config import RunConfig
from optimizer.models.cache import request_key
from optimizer.models.client import Ledger, ModelClient
from optimizer.run.events import CandidateAdded, ProposalReceived, RungCompleted, UsageSnapshot
from optimizer.run.progress import Reporter
from optimizer.run.racing import rank_key, successive_halving
from optimizer.run.scoring import Evaluator, Journal, PromptScorer, ScoreRecord, prompt_hash, summarize
from optimizer.run.store import RunStore
from optimizer.tasks.nearest import nearest_k
from optimizer.tasks.task import Task
from optimizer.tasks.templates import demo_block, normalize_instruction
from optimizer.types import Candidate, Example, GenerateRequest, Score

__all__ = ["ScorerSetup", "ScoresOwnPrompts", "SearchContext", "Searcher", "dev_splits", "recorder"]

E = TypeVar("E")


def recorder(store: RunStore, ledger: Ledger) -> Callable[..., None]:
    """A function that appends events to the run log together with a usage snapshot, in one write."""

    def record(*events: Any) -> None:
        store.log.append(*events, UsageSnapshot(usage=ledger.snapshot(), elapsed=round(ledger.elapsed, 3)))

    return record


@runtime_checkable
class Searcher(Protocol):
    """A search strategy: ``name`` and ``requires`` are read before anything loads; ``run`` searches.

    See the module docstring for a complete example.
    """

    name: str
    """The name recorded in results and shown on the leaderboard (``--searcher NAME`` for built-in ones)."""
    requires: frozenset[str]
    """Capabilities the target must have (``generate``, ``logprob``, ``whitebox``; see optimizer.models.base)."""

    def run(self, ctx: SearchContext) -> None:
        """Search until done; any model call may raise BudgetExceeded, which the engine handles."""
        ...


@dataclass(frozen=True)
class ScorerSetup:
    """What a searcher gets to build the scorer of its kind of prompt (see :class:`ScoresOwnPrompts`)."""

    config: RunConfig
    """The run's configuration."""
    task: Task
    """The task."""
    target: ModelClient
    """The target model (``target.whitebox()`` for weights; ``with target.passes(rows, tokens):``
    around each direct pass)."""
    recorded: Sequence[Any]
    """Events recorded by earlier sessions of this run (typed; see optimizer.run.events)."""
    record: Callable[..., None]
    """Append events to the run log (with a usage snapshot)."""
    folder: Path | None = None
    """The run folder (where a trained searcher keeps its checkpoints)."""

    def events(self, kind: type[E]) -> list[E]:
        """The earlier sessions' events of one kind."""
        return [e for e in self.recorded if isinstance(e, kind)]


@runtime_checkable
class ScoresOwnPrompts(Protocol):
    """A searcher whose prompts are not instructions (AutoPrompt's cloze triggers, soft prompts …).

    The engine asks it for the scorer of its kind of prompt before anything is scored; every
    score still goes through the one journal.
    """

    def build_scorer(self, setup: ScorerSetup) -> PromptScorer:
        """The scorer for this searcher's prompts (and for the run's baselines)."""
        ...


def dev_splits(task: Task, config: RunConfig) -> tuple[list[Example], list[Example]]:
    """A run's confirmation examples and the dev examples it races on, in racing order.

    The task's dev split is shuffled by the seed; at most ``selection.confirm_limit`` (and half the split) are set
    aside to confirm the finalists, and racing takes at most ``dev_limit`` of the rest.
    """
    dev = list(task.dev)
    random.Random(f"{config.seed}:dev-order").shuffle(dev)
    n_confirm = min(config.selection.confirm_limit, len(dev) // 2)
    rest = dev[n_confirm:]
    return dev[:n_confirm], rest[: config.dev_limit] if config.dev_limit else rest


class SearchContext:
    """The engine's services for one run, as a searcher uses them. Built by the engine only.

    Args:
        config: the run's configuration.
        task: the task.
        store: the run folder.
        ledger: usage and budget.
        target: the target model client.
        proposer: the proposer model client.
        evaluator: scores prompts (journalled).
        journal: recorded scores and proposals.
        reporter: progress display.
        recorded: the events of earlier sessions (typed).
        want_lp: whether selection computes gold log-probabilities.
        fixed_demos: the run's demonstrations (those of a candidate whose ``demos`` is None).
    """

    def __init__(self, config: RunConfig, task: Task, store: RunStore, ledger: Ledger, target: ModelClient,
                 proposer: ModelClient, evaluator: Evaluator, journal: Journal, reporter: Reporter,
                 recorded: Sequence[Any], want_lp: bool, fixed_demos: Sequence[Example] = ()) -> None:
        self.config = config
        self.task = task
        self.seed = config.seed
        self.target = target
        self.proposer = proposer
        self._store = store
        self._record = recorder(store, ledger)
        self._evaluator = evaluator
        self._journal = journal
        self._reporter = reporter
        self._recorded = list(recorded)
        self._want_lp = want_lp
        self._candidates: dict[str, Candidate] = {}
        self._by_norm: dict[str, str] = {}
        self._recorded_ids = {e.id for e in self._recorded if isinstance(e, CandidateAdded)}
        self.fixed_demos: tuple[Example, ...] = tuple(fixed_demos)
        """The run's fixed demonstrations (drawn from train with the seed)."""
        self.incumbent: Candidate | None = None
        """What the user has: their initial prompt, else the best human instruction on dev, else no
        instruction. Set by the engine before the search; every candidate must beat it to ship."""
        self._train = {ex.id: ex for ex in task.train}
        self._token_counts: dict[str, int] = {}
        self.trained: dict[str, int] = {}
        """Candidates that are trained adapters (by text): they show no demonstrations, and their fixed part is
        this many virtual tokens (0 for LoRA)."""
        # confirm: examples set aside to confirm the finalists against the incumbent (racing never sees them);
        # dev: the examples racing uses (shuffled by the seed, at most dev_limit)
        self.confirm, self.dev = dev_splits(task, config)

    @property
    def run_id(self) -> str:
        """The run's id (its folder name)."""
        return self._store.id

    @property
    def run_dir(self) -> str:
        """The run's folder."""
        return str(self._store.path)

    # -- plumbing ------------------------------------------------------------------------------
    def rng(self, purpose: str) -> random.Random:
        """A random generator seeded by the run seed and ``purpose`` (independent, reproducible streams)."""
        return random.Random(f"{self.seed}:{purpose}")

    def record(self, *events: Any) -> None:
        """Append events to the run log together with a usage snapshot, in one write."""
        self._record(*events)

    def events(self, kind: type[E]) -> list[E]:
        """Events of one kind recorded by earlier sessions of this run (for a searcher to resume its state)."""
        return [e for e in self._recorded if isinstance(e, kind)]

    def status(self, message: str) -> None:
        """Show what the search is doing on the progress display."""
        self._reporter.status(message)

    # -- proposals and candidates --------------------------------------------------------------
    def generate_proposals(self, requests: Sequence[GenerateRequest], *, origin: str,
                           parents: Sequence[str | None], round: int) -> list[str]:
        """The proposer's raw answers to ``requests``, in order; answers recorded earlier are read back.

        Args:
            requests: requests to the proposer model.
            origin: what they ask for (recorded with each answer).
            parents: per request, the candidate it varies (or None).
            round: search round.

        Returns:
            The generated texts, uncleaned.
        """
        keys = [request_key(self.proposer.name, "generate", r) for r in requests]
        missing = [i for i, k in enumerate(keys) if k not in self._journal.proposals]
        if missing:
            self.status(f"round {round}: proposing {len(missing)} instructions")
            answers = self.proposer.generate([requests[i] for i in missing])
            events = []
            for i, answer in zip(missing, answers):
                self._journal.proposals[keys[i]] = answer.text
                events.append(ProposalReceived(key=keys[i], raw=answer.text, origin=origin, parent=parents[i],
                                               round=round))
            self.record(*events)
        return [self._journal.proposals[k] for k in keys]

    def add(self, text: str, *, origin: str, parent: str | None = None, round: int = 0,
            demos: Sequence[str] | None = None) -> Candidate | None:
        """Register a candidate prompt; None when it is a duplicate (after normalisation, see :meth:`find`).

        Args:
            text: the instruction (may be empty only with demonstrations of its own).
            origin: what produced it (``forward``, ``variation``, ``demos``, ``reflection`` …).
            parent: the candidate it derives from.
            round: search round.
            demos: training example ids shown as its demonstrations, in order (None: the run's fixed ones;
                :func:`~optimizer.tasks.nearest.nearest_demos`: each input's nearest training examples).

        Returns:
            The candidate, or None for an empty instruction without demonstrations or a duplicate.
        """
        ids = tuple(demos) if demos is not None else None
        if ids is not None and nearest_k(ids) is None and (unknown := [i for i in ids if i not in self._train]):
            raise ValueError(f"demonstration ids {unknown} are not training examples of {self.task.name}")
        if not normalize_instruction(text) and ids is None:
            return None
        return self._register(Candidate(id=f"c{len(self._candidates) - self._special:03d}", text=text, origin=origin,
                                        parent=parent, round=round, demos=ids))

    _special = 0
    """Candidates registered under their own ids (the incumbent), not counted in ``c…`` numbering."""

    def _register(self, cand: Candidate) -> Candidate | None:
        norm = self._norm(cand.text, cand.demos)
        if norm in self._by_norm:
            return None
        self._candidates[cand.id] = cand
        self._by_norm[norm] = cand.id
        if cand.id not in self._recorded_ids:
            self.record(CandidateAdded(id=cand.id, text=cand.text, origin=cand.origin, parent=cand.parent,
                                       round=cand.round, prompt_hash=prompt_hash(cand.key),
                                       demos=list(cand.demos) if cand.demos is not None else None))
        return cand

    def set_incumbent(self, cand: Candidate) -> Candidate:
        """Register the incumbent under its own id (the engine calls this once, before the search)."""
        existing = self.find(cand.text, cand.demos)
        if existing is None:
            self._register(cand)
            self._special += 1
            existing = cand
        self.incumbent = existing
        return existing

    @staticmethod
    def _norm(text: str, demos: Sequence[str] | None) -> str:
        norm = normalize_instruction(text)
        return norm if demos is None else f"{norm}\x1e{','.join(demos)}"

    def find(self, text: str, demos: Sequence[str] | None = None) -> Candidate | None:
        """The candidate with this instruction (up to case, spacing and punctuation) and these demonstrations."""
        cid = self._by_norm.get(self._norm(text, tuple(demos) if demos is not None else None))
        return self._candidates[cid] if cid is not None else None

    def prompt_tokens(self, cand: Candidate) -> int:
        """Tokens of a candidate's fixed part (instruction line and demonstrations) under the target's tokenizer;
        about 4 characters a token when the target's tokenizer is not at hand (API models)."""
        if cand.text in self.trained:
            return self.trained[cand.text]
        head = f"Instruction: {cand.text.strip()}\n\n" if cand.text.strip() else ""
        if (k := nearest_k(cand.demos)) is not None:  # they differ by input: k of the pool's mean (first 1,000)
            blocks = [self.count_tokens(demo_block([ex])) for ex in self.task.train[:1000]]
            return self.count_tokens(head) + round(k * sum(blocks) / max(1, len(blocks)))
        return self.count_tokens(head + demo_block(self.demonstrations(cand)))

    def count_tokens(self, text: str) -> int:
        """Tokens of ``text`` under the target's tokenizer (about 4 characters a token without one)."""
        if text not in self._token_counts:
            tokenizer = getattr(self.target.adapter, "tokenizer", None)
            self._token_counts[text] = (len(tokenizer(text, add_special_tokens=False)["input_ids"]) if tokenizer
                                        is not None else (len(text) + 3) // 4)
        return self._token_counts[text]

    def demonstrations(self, cand: Candidate) -> list[Example]:
        """The demonstrations a candidate runs with, in order (none fixed when it shows each input its nearest)."""
        if cand.text in self.trained or nearest_k(cand.demos) is not None:
            return []
        return list(self.fixed_demos) if cand.demos is None else [self._train[i] for i in cand.demos]

    def records(self, key: str, examples: Sequence[Example], split: str = "dev") -> dict[str, float]:
        """A prompt's score on each example, by the run's scoring (accuracy or gold log-probability), journalled.

        Unlike :meth:`evaluate`, accuracy scoring computes no tie-breaking log-probability: for searchers
        that learn from many small evaluations (minibatches).

        Args:
            key: the prompt's key (:attr:`Candidate.key <optimizer.types.Candidate.key>`).
            examples: the examples.
            split: their split.

        Returns:
            ``{example id: score}``.
        """
        lp = self.config.scoring == "logprob"
        raw = self._evaluator.score([key], examples, split, accuracy=not lp, logprob=lp)[key]
        value = (lambda r: r.lp if r.lp is not None else -1e9) if lp else (lambda r: r.acc or 0.0)
        return {ex_id: float(value(r)) for ex_id, r in raw.items()}

    def outcomes(self, cand: Candidate, examples: Sequence[Example], split: str = "train") -> dict[str, ScoreRecord]:
        """The candidate's answer and score on each example (journalled): for searchers that learn from failures.

        Args:
            cand: the candidate.
            examples: the examples (searchers pass training examples; dev and test are for selection only).
            split: the split the examples come from.

        Returns:
            ``{example id: ScoreRecord}`` with ``output`` and ``acc``.
        """
        return self._evaluator.score([cand.key], examples, split, accuracy=True, logprob=False)[cand.key]

    @property
    def candidates(self) -> Mapping[str, Candidate]:
        """Every candidate so far, by id (read-only)."""
        return MappingProxyType(self._candidates)

    # -- scoring and racing --------------------------------------------------------------------
    def rank_key(self, score: Score) -> tuple[float, float]:
        """Sort key of a score under the run's scoring (see optimizer.run.racing.rank_key)."""
        return rank_key(score, self.config.scoring)

    def evaluate(self, texts: Sequence[str], examples: Sequence[Example], split: str = "dev") -> dict[str, Score]:
        """Score prompts (by key, see :attr:`Candidate.key <optimizer.types.Candidate.key>`) on examples with the
        run's scoring (journalled) and summarise each."""
        raw = self._evaluator.score(texts, examples, split, accuracy=self.config.scoring == "accuracy",
                                    logprob=self._want_lp)
        return {text: summarize(records) for text, records in raw.items()}

    def race(self, cands: Sequence[Candidate], *, round: int) -> list[Candidate]:
        """Successive halving over the dev examples (the run's racing settings); survivors, best first.

        Every candidate keeps the score of the most examples it was evaluated on.
        """
        seen: dict[str, dict[str, ScoreRecord]] = {}

        def evaluate(alive: list[Candidate], n: int) -> dict[str, Score]:
            what = "baselines" if round < 0 else f"round {round}"
            self.status(f"{what}: racing {len(alive)} {'prompt' if len(alive) == 1 else 'prompts'} on {n} dev examples")
            raw = self._evaluator.score([c.key for c in alive], self.dev[:n], "dev",
                                        accuracy=self.config.scoring == "accuracy", logprob=self._want_lp)
            seen.update(raw)
            return {key: summarize(records) for key, records in raw.items()}

        def per_example(c: Candidate) -> list[float]:  # on the last rung's examples, in dev order
            return [seen[c.key][ex.id].acc or 0.0 for ex in self.dev if ex.id in seen[c.key]]

        def on_rung(alive: list[Candidate], n: int) -> None:
            self._store.log.append(RungCompleted(round=round, n=n, scores={c.id: (c.dev.acc, c.dev.lp) for c in alive}))

        return successive_halving(cands, len(self.dev), evaluate=evaluate, rank=self.rank_key,
                                  min_examples=self.config.racing.min_examples, eta=self.config.racing.eta,
                                  on_rung=on_rung, rule=self.config.racing.rule, delta=self.config.racing.delta,
                                  per_example=per_example)

    def ranked(self) -> list[Candidate]:
        """Every candidate, best first (most dev examples first among equals)."""
        return sorted(self._candidates.values(), key=lambda c: (c.dev.n, *self.rank_key(c.dev)), reverse=True)
