"""Batched scoring of instructions on task examples, with a journal that never scores twice.

Every (instruction, split, example) score is appended to the run's events as soon as its
batch returns, and kept in an in-memory journal; asking again — later in the search, or in a
resumed job — reads it back instead of calling the model.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from optimizer.models.client import ModelClient
from optimizer.tasks.metrics import first_line
from optimizer.tasks.templates import ExecutionTemplate
from optimizer.types import Score, Example

__all__ = ["Evaluator", "Journal", "ScoreRecord", "instruction_hash", "summarize"]


def instruction_hash(text: str) -> str:
    """A short stable id of an instruction's exact text."""
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass
class ScoreRecord:
    """One instruction on one example."""

    acc: float | None = None
    """Metric score of the generated answer, or None when not computed."""
    lp: float | None = None
    """Log-probability of the gold output, or None when not computed."""
    lp_exact: bool | None = None
    """False when ``lp`` is only an upper bound (see LogprobResult.exact); None when exact."""
    output: str | None = None
    """The generated answer (first line)."""
    error: str | None = None
    """Why scoring this example failed, if it did (it then scores 0)."""


class Journal:
    """Scores and proposals already recorded for a run, by content key."""

    def __init__(self) -> None:
        self.scores: dict[tuple[str, str, str], ScoreRecord] = {}
        self.proposals: dict[str, list[str]] = {}

    def replay(self, events) -> None:
        """Load the score and proposal events of an existing log."""
        for e in events:
            if e.get("type") == "score":
                rec = self.scores.setdefault((e["split"], e["ih"], e["ex"]), ScoreRecord())
                for field, name in (("acc", "acc"), ("lp", "lp"), ("lp_exact", "lp_exact"), ("out", "output"),
                                    ("error", "error")):
                    if field in e:
                        setattr(rec, name, e[field])
            elif e.get("type") == "proposal":
                self.proposals[e["key"]] = e["raw"]


class Evaluator:
    """Scores instructions with the target model through one template and one metric.

    Args:
        client: the target model client.
        template: the execution template (demonstrations fixed for the run).
        metric: ``(prediction, answers) -> float``.
        journal: recorded scores; updated as scores arrive.
        record: called with the new events of each batch (the run store's ``append``).
        batch_size: requests sent to the client at once.
    """

    def __init__(
        self,
        client: ModelClient,
        template: ExecutionTemplate,
        metric: Callable[[str, Sequence[str]], float],
        journal: Journal,
        record: Callable[..., None],
        batch_size: int = 64,
    ) -> None:
        self.client = client
        self.template = template
        self.metric = metric
        self.journal = journal
        self.record = record
        self.batch_size = batch_size
        self.on_scored: Callable[[int], None] | None = None

    def score(
        self,
        instructions: Sequence[str],
        examples: Sequence[Example],
        split: str,
        *,
        accuracy: bool = True,
        logprob: bool = False,
    ) -> dict[str, dict[str, ScoreRecord]]:
        """Score every instruction on every example, calling the model only for what is missing.

        Args:
            instructions: instruction texts ("" is the no-instruction baseline).
            examples: the examples.
            split: the split name, part of the journal key.
            accuracy: compute the metric score of a greedy generation.
            logprob: compute the gold output's log-probability.

        Returns:
            ``{instruction: {example id: ScoreRecord}}``.
        """
        todo_gen: list[tuple[str, Example]] = []
        todo_lp: list[tuple[str, Example]] = []
        for text in dict.fromkeys(instructions):
            ih = instruction_hash(text)
            for ex in examples:
                have = self.journal.scores.get((split, ih, ex.id))
                if accuracy and (have is None or have.acc is None):
                    todo_gen.append((text, ex))
                if logprob and (have is None or have.lp is None):
                    todo_lp.append((text, ex))
        for start in range(0, len(todo_lp), self.batch_size):
            self._run_lp(todo_lp[start : start + self.batch_size], split)
        for start in range(0, len(todo_gen), self.batch_size):
            self._run_gen(todo_gen[start : start + self.batch_size], split)
        return {
            text: {ex.id: self.journal.scores[(split, instruction_hash(text), ex.id)] for ex in examples}
            for text in dict.fromkeys(instructions)
        }

    def _store(self, split: str, text: str, ex: Example, **fields) -> dict:
        key = (split, instruction_hash(text), ex.id)
        rec = self.journal.scores.setdefault(key, ScoreRecord())
        for name, value in fields.items():
            setattr(rec, name, value)
        event = {"type": "score", "split": split, "ih": key[1], "ex": ex.id}
        event.update({"out" if k == "output" else k: v for k, v in fields.items() if v is not None})
        return event

    def _run_gen(self, chunk: list[tuple[str, Example]], split: str) -> None:
        answers = self.client.generate([self.template.generate_request(t, ex) for t, ex in chunk])
        events = []
        for (text, ex), gen in zip(chunk, answers):
            prediction = first_line(gen.text)
            try:
                value, error = float(self.metric(prediction, ex.answers)), None
            except Exception as exc:  # a user metric failing on one example scores 0
                value, error = 0.0, f"{type(exc).__name__}: {exc}"
            events.append(self._store(split, text, ex, acc=value, output=prediction, error=error))
        self.record(*events)
        if self.on_scored:
            self.on_scored(len(chunk))

    def _run_lp(self, chunk: list[tuple[str, Example]], split: str) -> None:
        results = self.client.logprob([self.template.logprob_request(t, ex) for t, ex in chunk])
        events = [self._store(split, t, ex, lp=r.logprob, lp_exact=None if r.exact else False)
                  for (t, ex), r in zip(chunk, results)]
        self.record(*events)
        if self.on_scored:
            self.on_scored(len(chunk))


def summarize(records: dict[str, ScoreRecord]) -> Score:
    """Means of a candidate's records (None where a kind of score is missing)."""
    accs = [r.acc for r in records.values() if r.acc is not None]
    lps = [r.lp for r in records.values() if r.lp is not None and math.isfinite(r.lp)]
    return Score(
        acc=sum(accs) / len(accs) if accs else None,
        lp=sum(lps) / len(lps) if lps else None,
        n=len(records),
    )
