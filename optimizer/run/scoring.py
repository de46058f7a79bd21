"""Scoring prompts on task examples, with one journal that never scores anything twice.

The :class:`Evaluator` protocol is what the engine and searchers call. There is one
implementation, :class:`JournalledEvaluator`: it looks every (prompt, split, example) up in the
run's :class:`Journal`, sends only what is missing to a :class:`PromptScorer` in batches,
appends a :class:`~optimizer.run.events.ScoreRecorded` event per example as soon as its batch
returns, and answers from the journal. A resumed job replays the journal from the log and asks
nothing again. What differs between kinds of prompt (an instruction run by a generating model,
a cloze prompt read off a masked LM, …) is only the scorer.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from optimizer.models.client import ModelClient
from optimizer.run.events import ProposalReceived, ScoreRecorded
from optimizer.tasks.nearest import NearestExamples, nearest_k
from optimizer.tasks.templates import ExecutionTemplate
from optimizer.types import Example, Score, split_prompt_key

__all__ = ["Evaluator", "InstructionScorer", "Journal", "JournalledEvaluator", "PromptScorer", "ScoreRecord",
           "prompt_hash", "summarize"]

ACC, LP = "acc", "lp"


def prompt_hash(text: str) -> str:
    """A short stable id of a prompt's exact text (the key of its scores in the journal)."""
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass
class ScoreRecord:
    """One prompt on one example."""

    acc: float | None = None
    """Metric score of the answer, or None when not computed."""
    lp: float | None = None
    """Log-probability of the gold output, or None when not computed."""
    lp_exact: bool | None = None
    """False when ``lp`` is only an upper bound (see LogprobResult.exact); None when exact."""
    output: str | None = None
    """The answer (first line of a generation, or a predicted label)."""
    error: str | None = None
    """Why scoring this example failed, if it did (it then scores 0)."""


_FIELDS = ("acc", "lp", "lp_exact", "output", "error")


class Journal:
    """Scores and proposals already recorded for a run, by content key."""

    def __init__(self) -> None:
        self.scores: dict[tuple[str, str, str], ScoreRecord] = {}
        self.proposals: dict[str, str] = {}

    def replay(self, events: Iterable[object]) -> None:
        """Load the score and proposal events of an existing log."""
        for e in events:
            if isinstance(e, ScoreRecorded):
                self.store(ScoreRecord(**{f: getattr(e, f) for f in _FIELDS}), e.split, e.prompt_hash, e.example)
            elif isinstance(e, ProposalReceived):
                self.proposals[e.key] = e.raw

    def get(self, split: str, text: str, example_id: str) -> ScoreRecord | None:
        """The record of ``text`` on one example, if any."""
        return self.scores.get((split, prompt_hash(text), example_id))

    def store(self, fields: ScoreRecord, split: str, hash_: str, example_id: str) -> ScoreRecorded:
        """Merge the set fields of ``fields`` into the record; return the event that records them."""
        rec = self.scores.setdefault((split, hash_, example_id), ScoreRecord())
        values = {f: getattr(fields, f) for f in _FIELDS if getattr(fields, f) is not None}
        for name, value in values.items():
            setattr(rec, name, value)
        return ScoreRecorded(split=split, prompt_hash=hash_, example=example_id, **values)


@runtime_checkable
class PromptScorer(Protocol):
    """Computes scores of (prompt, example) pairs for one kind of prompt; knows nothing of journals.

    Example:
        A scorer that gives every answer full marks::

            class Lenient:
                joint = True

                def compute(self, pairs, kinds):
                    return [ScoreRecord(acc=1.0, output="") for _ in pairs]
    """

    joint: bool
    """True when one pass yields every kind of score (a pair is then computed once, for all kinds);
    False when accuracy and log-probability are separate passes, each asked for only when missing."""

    def compute(self, pairs: Sequence[tuple[str, Example]], kinds: frozenset[str]) -> list[ScoreRecord]:
        """Scores of each pair, in order; ``kinds`` holds ``"acc"`` and/or ``"lp"``.

        A failure on one example is that example's ``error`` (scoring 0); only faults of the
        whole system raise.
        """
        ...


@runtime_checkable
class Evaluator(Protocol):
    """Scores prompts on examples for the engine and searchers."""

    def score(self, prompts: Sequence[str], examples: Sequence[Example], split: str, *, accuracy: bool = True,
              logprob: bool = False) -> dict[str, dict[str, ScoreRecord]]:
        """Every prompt on every example: ``{prompt: {example id: ScoreRecord}}``."""
        ...


class JournalledEvaluator:
    """The one :class:`Evaluator`: journal lookups, batched scoring, one event per scored example.

    Args:
        scorer: computes what is missing.
        journal: recorded scores; updated as scores arrive.
        record: called with the events of each batch (the engine appends them with a usage snapshot).
        batch_size: pairs sent to the scorer at once.
    """

    def __init__(
        self, scorer: PromptScorer, journal: Journal, record: Callable[..., None], batch_size: int = 64
    ) -> None:
        self.scorer = scorer
        self.journal = journal
        self.record = record
        self.batch_size = batch_size
        self.on_scored: Callable[[int], None] | None = None

    def score(self, prompts: Sequence[str], examples: Sequence[Example], split: str, *, accuracy: bool = True,
              logprob: bool = False) -> dict[str, dict[str, ScoreRecord]]:
        """Score every prompt on every example, calling the scorer only for what is missing.

        Args:
            prompts: prompt texts ("" is the no-instruction baseline).
            examples: the examples.
            split: the split name, part of the journal key.
            accuracy: compute the metric score of an answer.
            logprob: compute the gold output's log-probability.

        Returns:
            ``{prompt: {example id: ScoreRecord}}``.
        """
        texts = list(dict.fromkeys(prompts))
        if self.scorer.joint:
            for text in texts:  # one prompt per batch: its rows share a template
                todo = [(text, ex) for ex in examples if self._missing(split, text, ex, ACC)]
                self._run(todo, split, frozenset({ACC, LP}))
        else:  # batch by batch, the log-probability first: a local model keeps each prompt's keys and values from
            # that pass, and its answer then runs from them
            kinds = [kind for kind, wanted in ((LP, logprob), (ACC, accuracy)) if wanted]
            todo = [(t, ex) for t in texts for ex in examples if any(self._missing(split, t, ex, k) for k in kinds)]
            for start in range(0, len(todo), self.batch_size):
                chunk = todo[start : start + self.batch_size]
                for kind in kinds:
                    self._run([(t, ex) for t, ex in chunk if self._missing(split, t, ex, kind)], split,
                              frozenset({kind}))
        return {t: {ex.id: self.journal.scores[(split, prompt_hash(t), ex.id)] for ex in examples} for t in texts}

    def _missing(self, split: str, text: str, ex: Example, kind: str) -> bool:
        have = self.journal.get(split, text, ex.id)
        return have is None or getattr(have, kind) is None

    def _run(self, todo: list[tuple[str, Example]], split: str, kinds: frozenset[str]) -> None:
        for start in range(0, len(todo), self.batch_size):
            chunk = todo[start : start + self.batch_size]
            records = self.scorer.compute(chunk, kinds)
            self.record(*[self.journal.store(rec, split, prompt_hash(text), ex.id)
                          for (text, ex), rec in zip(chunk, records)])
            if self.on_scored:
                self.on_scored(len(chunk))


class InstructionScorer:
    """Prompts (an instruction and demonstrations) executed by a target model, scored by a metric.

    A prompt is given by its key (:func:`~optimizer.types.prompt_key`): an instruction alone runs
    with the template's demonstrations (the run's fixed ones); a key naming demonstrations runs
    with those training examples instead, or with each input's nearest ones (``@nearest:K``).

    Args:
        client: the target model client.
        template: the execution template (demonstrations fixed for the run).
        metric: ``(prediction, answers) -> float``.
        train: the training examples demonstrations are taken from, by id.
    """

    joint = False

    def __init__(self, client: ModelClient, template: ExecutionTemplate,
                 metric: Callable[[str, Sequence[str]], float], train: Sequence[Example] = ()) -> None:
        self.client = client
        self.template = template
        self.metric = metric
        self.train = {ex.id: ex for ex in train}
        self._nearest: NearestExamples | None = None

    def demonstrations(self, key: str, example: Example | None = None) -> list[Example]:
        """The demonstrations a prompt runs with on ``example``, in order (nearest ones depend on the example)."""
        ids = split_prompt_key(key)[1]
        if ids is None:
            return list(self.template.demos)
        if (k := nearest_k(ids)) is not None:
            if example is None:
                raise ValueError(f"prompt {key!r} shows each input its nearest training examples: name the example")
            if self._nearest is None:
                self._nearest = NearestExamples(list(self.train.values()))
            return self._nearest.select(example, k)
        missing = [i for i in ids if i not in self.train]
        if missing:
            raise KeyError(f"demonstration ids {missing} are not training examples of this task")
        return [self.train[i] for i in ids]

    def requests(self, key: str, example: Example) -> tuple[ExecutionTemplate, str]:
        """The template (with the prompt's demonstrations) and instruction that run ``key`` on an example."""
        instruction, ids = split_prompt_key(key)
        return (self.template if ids is None else self.template.with_demos(self.demonstrations(key, example))), \
            instruction

    def compute(self, pairs: Sequence[tuple[str, Example]], kinds: frozenset[str]) -> list[ScoreRecord]:
        """Greedy answers scored by the metric (``acc``), or gold log-probabilities (``lp``)."""
        runs = [(*self.requests(key, ex), ex) for key, ex in pairs]
        if LP in kinds:
            results = self.client.logprob([tpl.logprob_request(instr, ex) for tpl, instr, ex in runs])
            return [ScoreRecord(lp=r.logprob, lp_exact=None if r.exact else False) for r in results]
        answers = self.client.generate([tpl.generate_request(instr, ex) for tpl, instr, ex in runs])
        out = []
        for (tpl, _, ex), gen in zip(runs, answers):
            prediction = tpl.answer(gen.text)
            try:
                out.append(ScoreRecord(acc=float(self.metric(prediction, ex.answers)), output=prediction))
            except Exception as exc:  # a user metric failing on one example scores 0
                out.append(ScoreRecord(acc=0.0, output=prediction, error=f"{type(exc).__name__}: {exc}"))
        return out


def summarize(records: dict[str, ScoreRecord]) -> Score:
    """Means of a prompt's records (None where a kind of score is missing)."""
    accs = [r.acc for r in records.values() if r.acc is not None]
    lps = [r.lp for r in records.values() if r.lp is not None and math.isfinite(r.lp)]
    return Score(
        acc=sum(accs) / len(accs) if accs else None,
        lp=sum(lps) / len(lps) if lps else None,
        n=len(records),
    )
