"""The run log: one pydantic model per kind of event, in one tagged union, and the class that writes and reads it.

``runs/<id>/events.jsonl`` is append-only: every event is one JSON line written with a single
``write`` and fsynced, so a job killed at any moment leaves a readable log (at worst a torn last
line, which is ignored and cut before the next append). Nothing else in apo builds or parses
event dicts: writers construct these models and readers get them back from :meth:`RunLog.replay`.

Schemas only grow. Runs written under schema 1 (the first release) used short keys (``ih``,
``ex``, ``out``); each model maps them on reading, so those runs still open, report and resume.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, field_validator, model_validator

from optimizer.run.schema import SCHEMA_VERSION, JournalWriteError, RunLogError, check_schema

__all__ = [
    "SCHEMA_VERSION", "AutoPromptStep", "BudgetStopped", "CandidateAdded", "Event", "JournalWriteError",
    "LabelWordsChosen", "ProposalReceived", "RunDone", "RunLog", "RunLogError", "RungCompleted", "ScoreRecorded",
    "SearcherNote", "SessionStarted", "TrainingCheckpoint", "TriggerAccepted", "UsageSnapshot", "check_schema",
    "parse_event",
]

MAX_STORED_CHARS = 2000
"""The most characters of a model's answer (or an error) kept in a score event; the score itself is computed
on the whole answer first."""

def _rename(data: Any, names: dict[str, str]) -> Any:
    if isinstance(data, dict):
        return {names.get(k, k): v for k, v in data.items()}
    return data


class _Event(BaseModel):
    model_config = ConfigDict(extra="ignore", use_attribute_docstrings=True)

    t: float | None = None
    """Unix time the event was written (set by :meth:`RunLog.append`)."""


class SessionStarted(_Event):
    """A process started (or resumed) working on the run."""

    type: Literal["session"] = "session"
    resume: bool = False
    """Whether this session continues a run that had stopped."""
    schema_version: int = 1
    """The log schema this session writes (runs written before versioning: 1)."""
    run_id: str | None = None
    """The run this log belongs to (its id in ``config.json``); None in runs written before it was recorded.
    A resume refuses a log naming another run."""


class UsageSnapshot(_Event):
    """Usage so far, written with every batch of other events (the last one restores the ledger on resume)."""

    type: Literal["usage"] = "usage"
    usage: dict[str, dict[str, Any]] = {}
    """Per role (``proposer``, ``target``): calls, cache hits, tokens, seconds, cost."""
    elapsed: float = 0.0
    """Seconds of search so far, over every session."""


class ProposalReceived(_Event):
    """The raw text a proposer model returned for one request (journalled: never asked again)."""

    type: Literal["proposal"] = "proposal"
    key: str
    """The request's cache key (model, kind, canonical request)."""
    raw: str
    """The text as generated, before any clean-up."""
    origin: str = ""
    """What the request asked for (``forward``, ``variation``, …)."""
    parent: str | None = None
    """The candidate the request varied, if any."""
    round: int = 0
    """Search round."""


class CandidateAdded(_Event):
    """A new candidate prompt entered the search."""

    type: Literal["candidate"] = "candidate"
    id: str
    """Run-local id (``c000``…)."""
    text: str
    """The prompt text."""
    origin: str
    """Which searcher step produced it (``forward``, ``variation``, ``autoprompt``, …)."""
    parent: str | None = None
    """The id of the candidate it was derived from."""
    round: int = 0
    """Search round (AutoPrompt: iteration)."""
    prompt_hash: str = ""
    """Short hash of the prompt's key (its text, and its demonstrations when it has its own): the key of its
    scores."""
    demos: list[str] | None = None
    """Training example ids shown as its demonstrations, in order (None: the run's fixed demonstrations)."""

    @model_validator(mode="before")
    @classmethod
    def _schema1(cls, data: Any) -> Any:
        return _rename(data, {"ih": "prompt_hash"})


class ScoreRecorded(_Event):
    """One prompt scored on one example (only the kinds of score computed in that pass are set)."""

    type: Literal["score"] = "score"
    split: str
    """``dev``, ``test`` or ``train``."""
    prompt_hash: str
    """Short hash of the prompt's exact text."""
    example: str
    """The example's id inside its split."""
    acc: float | None = None
    """Metric score of the generated answer."""
    lp: float | None = None
    """Log-probability of the gold output."""
    lp_exact: bool | None = None
    """False when ``lp`` is only an upper bound (API models); unset when exact."""
    output: str | None = None
    """The model's answer (first line), or the predicted label; at most :data:`MAX_STORED_CHARS` characters."""
    error: str | None = None
    """Why scoring this example failed (it then scores 0); at most :data:`MAX_STORED_CHARS` characters."""

    @field_validator("output", "error")
    @classmethod
    def _capped(cls, value: str | None) -> str | None:
        if value is not None and len(value) > MAX_STORED_CHARS:
            return value[:MAX_STORED_CHARS] + " …(cut)"
        return value

    @model_validator(mode="before")
    @classmethod
    def _schema1(cls, data: Any) -> Any:
        return _rename(data, {"ih": "prompt_hash", "ex": "example", "out": "output"})


class RungCompleted(_Event):
    """One rung of a race: every candidate still in it scored on the first ``n`` dev examples."""

    type: Literal["rung"] = "rung"
    round: int = 0
    """Search round (-1: the human baselines)."""
    n: int
    """Dev examples in this rung."""
    scores: dict[str, tuple[float | None, float | None]] = {}
    """Candidate id → (accuracy, log-probability) after this rung, best first."""


class BudgetStopped(_Event):
    """The budget ran out; the run ends ``partial``."""

    type: Literal["budget_stop"] = "budget_stop"
    reason: str
    """Which limit, with the figures."""
    phase: str | None = None
    """``test`` when it ran out during the final test scoring."""


class RunDone(_Event):
    """The result was written."""

    type: Literal["done"] = "done"
    status: str
    """``complete`` or ``partial``."""


class LabelWordsChosen(_Event):
    """AutoPrompt's label words, found automatically (kept so a resumed run uses the same ones)."""

    type: Literal["label_words"] = "label_words"
    label_words: dict[str, list[str]]
    """Class → label words."""
    auto: bool = True
    """Found by the label search (not given by the user)."""


class _AutoPromptIteration(_Event):
    iteration: int
    """AutoPrompt iteration (0: the starting trigger)."""
    position: int | None = None
    """The trigger slot this iteration tried to replace."""
    candidates: int | None = None
    """Replacement tokens compared."""
    batch_loss_before: float | None = None
    """Loss of the current trigger on this iteration's comparison batch."""
    stale: int = 0
    """Iterations in a row without an accepted replacement."""
    passes: dict[str, int] = {}
    """Cumulative example passes through the model (``forward``, ``backward``)."""


class TriggerAccepted(_AutoPromptIteration):
    """AutoPrompt accepted a trigger (or started from one): a new candidate with its dev score."""

    type: Literal["trigger"] = "trigger"
    accepted: bool = True
    """Always true (kept for readers of schema 1)."""
    batch_loss: float | None = None
    """Loss of the accepted trigger on the comparison batch."""
    trigger_ids: list[int]
    """Token ids in the trigger slots."""
    trigger_tokens: list[str] = []
    """Their texts."""
    text: str
    """The candidate's display text."""
    candidate: str
    """Its candidate id."""
    train_loss: float | None = None
    """Mean label loss on the fixed training subset."""
    train_n: int | None = None
    """Size of that subset."""
    dev_acc: float | None = None
    """Dev accuracy."""
    dev_lp: float | None = None
    """Dev gold log-probability."""
    dev_n: int | None = None
    """Dev examples behind those."""


class AutoPromptStep(_AutoPromptIteration):
    """An AutoPrompt iteration that kept the current trigger."""

    type: Literal["autoprompt_step"] = "autoprompt_step"
    accepted: bool = False
    """Always false."""
    best_candidate_loss: float | None = None
    """The best replacement's loss (not below the current one)."""


class TrainingCheckpoint(_Event):
    """A trained searcher (prompt tuning, prefix tuning, P-tuning, LoRA) saved a checkpoint and scored it on dev;
    written after the checkpoint's files, so that a resumed run restarts from the last one recorded."""

    type: Literal["train_checkpoint"] = "train_checkpoint"
    method: str
    """The peft method."""
    step: int
    """Optimizer steps taken."""
    path: str
    """The checkpoint's folder, relative to the run folder (the adapter in peft's format, and the trainer state)."""
    candidate: str
    """The candidate id of this checkpoint's adapter."""
    train_loss: float
    """Mean training loss over the steps since the previous checkpoint."""
    dev_acc: float | None = None
    """Dev accuracy of the adapter."""
    trainable_params: int = 0
    """Parameters trained."""
    train_examples: int = 0
    """Training examples drawn from."""
    train_seconds: float = 0.0
    """Seconds spent in training steps so far (over every session)."""


class SearcherNote(_Event):
    """A searcher's own state, for searchers with no event type of their own (e.g. defined outside apo).

    Example::

        ctx.record(SearcherNote(searcher="grid", kind="cell", data={"i": 3}))
        done = [e.data for e in ctx.events(SearcherNote) if e.kind == "cell"]
    """

    type: Literal["note"] = "note"
    searcher: str
    """The searcher's name."""
    kind: str
    """What the note is about (the searcher's own vocabulary)."""
    data: dict[str, Any] = {}
    """JSON-serialisable content."""


Event = Annotated[
    SessionStarted | UsageSnapshot | ProposalReceived | CandidateAdded | ScoreRecorded | RungCompleted
    | BudgetStopped | RunDone | LabelWordsChosen | TriggerAccepted | AutoPromptStep | TrainingCheckpoint
    | SearcherNote,
    Field(discriminator="type"),
]
"""Any event of the run log."""

_EVENT: TypeAdapter[Event] = TypeAdapter(Event)


def parse_event(line: str | bytes) -> Event:
    """One line of the log as its typed event.

    Raises:
        pydantic.ValidationError: the line is not a run event.
    """
    return _EVENT.validate_json(line)

E = TypeVar("E", bound=_Event)


class RunLog:
    """``events.jsonl`` of one run: typed appends and replay.

    Args:
        path: the file (created on the first append).
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._fh: Any = None

    def append(self, *events: _Event) -> None:
        """Append events (each stamped with the time) in one write, then fsync.

        Raises:
            JournalWriteError: the write failed (a full disk, a lost mount); the file is cut back to where it was
                before this call, so the journal stays whole and the run resumes from it.
        """
        if not events:
            return
        now = round(time.time(), 3)
        lines = []
        for event in events:
            data = event.model_dump(mode="json", exclude_none=True)
            data.pop("t", None)
            lines.append(json.dumps({"t": now, **data}, ensure_ascii=False) + "\n")
        payload = "".join(lines).encode("utf-8")
        start = None
        try:
            if self._fh is None:
                self._fh = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            start = os.fstat(self._fh).st_size
            view = memoryview(payload)
            while view:
                view = view[os.write(self._fh, view):]
            os.fsync(self._fh)
        except OSError as exc:
            if start is not None:
                with contextlib.suppress(OSError):
                    os.ftruncate(self._fh, start)  # nothing half-written: the journal ends on its last whole batch
            raise JournalWriteError(
                f"cannot write the run's journal {self.path}: {exc.strerror or exc}; what was recorded before is "
                f"intact. Fix the cause (free disk space), then `apo resume {self.path.parent.name}` continues "
                "the run") from exc

    def replay(self) -> Iterator[Event]:
        """Every complete event, in order, as typed models.

        A torn last line (a kill mid-write) is skipped.

        Raises:
            RunLogError: a complete line that is not an event (the file is damaged); its ``line`` is the number
                of that line, and the message says how to repair the log.
        """
        if not self.path.exists():
            return
        with open(self.path, "rb") as fh:
            for number, line in enumerate(fh, 1):
                if not line.endswith(b"\n"):
                    break
                try:
                    yield _EVENT.validate_json(line)
                except ValidationError as exc:
                    raise self._damaged(number, exc) from None

    def _damaged(self, number: int, exc: ValidationError) -> RunLogError:
        run = self.path.parent.name
        error = RunLogError(
            f"{self.path}, line {number}: not a run event ({exc.errors()[0]['msg']}); the log is damaged. "
            f"`apo runs repair {run}` keeps the lines before it (the damaged file is kept beside it as a backup), "
            f"then `apo resume {run}` recomputes what was cut")
        error.line = number
        return error

    def of_type(self, kind: type[E]) -> list[E]:
        """The recorded events of one kind, in order."""
        return [e for e in self.replay() if isinstance(e, kind)]

    def repair(self) -> None:
        """Cut a torn last line left by a kill, so that appends start on a fresh line."""
        if not self.path.exists():
            return
        data = self.path.read_bytes()
        if data and not data.endswith(b"\n"):
            with open(self.path, "r+b") as fh:
                fh.truncate(data.rfind(b"\n") + 1)

    def close(self) -> None:
        """Close the file."""
        if self._fh is not None:
            with contextlib.suppress(OSError):
                os.close(self._fh)
            self._fh = None
