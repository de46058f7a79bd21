"""Trained prompts on one leaderboard with written ones: prompt tuning (Lester et al. 2021), prefix tuning (Li &
Liang 2021), P-tuning (Liu et al. 2021) and LoRA (Hu et al. 2021), each a peft adapter trained on the task's
train split of a local causal LM (generation tasks), or through a cloze template and label words (classification,
as PET; see ``cloze.py``) on a masked LM, and on a causal LM for a task whose human instructions are cloze templates.

Training takes ``steps`` AdamW steps on seeded minibatches of the train split (at most the run's
``train_limit`` examples of it). Every ``eval_every`` steps the adapter is saved in the run folder
(``adapter/step-NNNNN/``: peft's ``adapter_model.safetensors`` and ``adapter_config.json``, and the trainer's
state) and becomes a candidate, scored on dev like any prompt; the engine's selection then confirms the best
against the incumbent on held-out dev examples and scores what ships on test. Early stopping is the choice of
the best checkpoint on dev (and ``patience`` ends training early). A run killed mid-training resumes from its
last recorded checkpoint: the steps after it are taken again with the same minibatches, so the result is the
one an uninterrupted run gives. Each training step books its examples (twice: forward and backward) against
the call budget, so ``max_calls`` and ``max_seconds`` bound training as they bound any search.

A trained prompt works only on the model it was trained on; its candidate text names the method and step.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Any

from optimizer.errors import UsageError
from optimizer.models.base import WHITEBOX
from optimizer.run.events import TrainingCheckpoint
from optimizer.run.scoring import LP, ScoreRecord
from optimizer.search.soft.labels import TRAINED, adapter_label, adapter_step, checkpoint_folder
from optimizer.search.soft.model import SoftModel
from optimizer.settings import SoftConfig, SoftMethod
from optimizer.tasks.cloze import reads_cloze
from optimizer.tasks.metrics import resolve_metric
from optimizer.types import Example

if TYPE_CHECKING:
    from optimizer.models.client import ModelClient
    from optimizer.run.context import ScorerSetup, SearchContext

__all__ = ["TRAINED", "LoRASearch", "PTuningSearch", "PrefixTuningSearch", "PromptTuningSearch", "SoftScorer",
           "SoftSearch", "adapter_label", "adapter_step", "not_text"]

CHUNK = 16
"""Examples per forward pass when scoring an adapter."""


def not_text(run_id: str, searcher: str, text: str, target: str) -> str:
    """Why a run whose shipped prompt is an adapter has no prompt text to export."""
    step = adapter_step(searcher, text)
    folder = checkpoint_folder(step) if step is not None else None
    return (f"run {run_id} shipped a trained prompt ({searcher}, step {step}): an adapter of the model {target}, "
            f"not text. It works only on that model; its weights are in the run folder, {folder}/ "
            "(peft's adapter_model.safetensors and adapter_config.json): load it with "
            "peft.PeftModel.from_pretrained(model, that folder), or score it again with `apo eval --from-run "
            f"{run_id}`. There is no prompt text to export")


class SoftScorer:
    """Scores adapters (candidate texts registered with their checkpoint) with the peft model, and every other
    prompt (the baselines: no instruction, human instructions, the user's prompt) with the instruction scorer.

    Args:
        base: the run's instruction scorer (AutoPrompt's cloze scorer on a masked LM).
        model: the adapter model.
        target: the target client (every pass is booked with it).
        metric: ``(prediction, answers) -> float``.
    """

    joint = False

    def __init__(self, base: Any, model: SoftModel, target: ModelClient,
                 metric: Callable[[str, Sequence[str]], float]) -> None:
        self.base, self.model, self.target, self.metric = base, model, target, metric
        self.template = getattr(base, "template", None)
        self.adapters: dict[str, Path] = {}

    def register(self, text: str, folder: Path) -> None:
        """Make ``text`` stand for the adapter saved in ``folder``."""
        self.adapters[text] = folder

    def compute(self, pairs: Sequence[tuple[str, Example]], kinds: frozenset[str]) -> list[ScoreRecord]:
        """Scores in order: adapters through the peft model (greedy answers or gold log-probabilities), the
        rest through the instruction scorer."""
        out: list[ScoreRecord | None] = [None] * len(pairs)
        plain = [i for i, (key, _) in enumerate(pairs) if key not in self.adapters]
        for i, record in zip(plain, self.base.compute([pairs[i] for i in plain], kinds) if plain else []):
            out[i] = record
        by_text: dict[str, list[int]] = {}
        for i, (key, _) in enumerate(pairs):
            if key in self.adapters:
                by_text.setdefault(key, []).append(i)
        for text, rows in by_text.items():
            folder = self.adapters[text]
            if self.model.loaded != folder:
                self.model.load_adapter(folder)
            rows.sort(key=lambda i: len(pairs[i][1].input))  # rows of like length together: less padding
            if LP not in kinds:  # answers a log-probability pass found last: the others decode in full chunks
                rows.sort(key=lambda i: self.model.known(pairs[i][1]))
            for start in range(0, len(rows), CHUNK):
                chunk = rows[start:start + CHUNK]
                examples = [pairs[i][1] for i in chunk]
                with self.target.passes(len(examples), self.model.input_tokens(examples, answers=LP in kinds)):
                    if LP in kinds:
                        records = [ScoreRecord(lp=lp) for lp in self.model.logprobs(examples)]
                    else:
                        records = [self._scored(answer, ex) for answer, ex in zip(self.model.answers(examples),
                                                                                   examples)]
                for i, record in zip(chunk, records):
                    out[i] = record
        return [r if r is not None else ScoreRecord() for r in out]

    def _scored(self, prediction: str, example: Example) -> ScoreRecord:
        try:
            return ScoreRecord(acc=float(self.metric(prediction, example.answers)), output=prediction)
        except Exception as exc:  # a user metric failing on one example scores 0
            return ScoreRecord(acc=0.0, output=prediction, error=f"{type(exc).__name__}: {exc}")


class SoftSearch:
    """A peft adapter trained as a searcher (see the module docstring); one subclass per method.

    Args:
        config: its parameters.
    """

    name: str = "soft"
    method: SoftMethod = "prompt-tuning"
    requires = frozenset({WHITEBOX})

    def __init__(self, config: SoftConfig | None = None) -> None:
        self.config = config or SoftConfig()
        self.model: SoftModel | None = None
        self.scorer: SoftScorer | None = None
        self.folder: Path | None = None

    def build_scorer(self, setup: ScorerSetup) -> SoftScorer:
        """Copy the target's weights under a new adapter; the run scores every prompt with the returned scorer."""
        from optimizer.run.engine import instruction_scorer

        box = setup.target.whitebox()
        base: Any
        if reads_cloze(box.kind, setup.task.labels, setup.task.instructions):
            base, self.model = self._cloze(setup)
        else:
            base = instruction_scorer(setup.config, setup.task, setup.target)
            with box.lock:
                self.model = SoftModel(self.method, self.config, box.model, box.tokenizer, base.template,
                                       setup.config.seed)
        self.scorer = SoftScorer(base, self.model, setup.target, resolve_metric(
            setup.config.metric or setup.task.metric, setup.task.labels))
        self.folder = setup.folder
        for event in setup.events(TrainingCheckpoint):  # earlier sessions' checkpoints stay candidates
            if setup.folder is not None:
                self.scorer.register(adapter_label(self.name, event.step), setup.folder / event.path)
        return self.scorer

    def _cloze(self, setup: ScorerSetup) -> tuple[Any, SoftModel]:
        """A masked LM (or a causal LM on a cloze classification task): AutoPrompt's cloze scorer for the baselines,
        and the adapter on the task's manual template (``--cloze-template`` when it has no trigger slot, else the
        first instruction with a ``[P]`` slot)."""
        from optimizer.search.autoprompt.search import AutoPromptSearch
        from optimizer.search.soft.cloze import ClozeSoftModel
        from optimizer.tasks.cloze import parse_template

        cloze = AutoPromptSearch(setup.config.autoprompt)
        base = cloze.build_scorer(setup)
        given = setup.config.autoprompt.cloze_template
        texts = ([given] if given and "[T]" not in given else []) + [t for t in setup.task.instructions if "[P]" in t]
        if not texts:
            raise UsageError(f"{self.name} on a masked LM needs a manual cloze template with a [P] slot: give "
                             "--cloze-template '{sentence} It was [P] .' (or a task instruction with [P])")
        model, _ = cloze._built()
        with model.lock if model.lock is not None else nullcontext():
            return base, ClozeSoftModel(self.method, self.config, model, parse_template(texts[0]), base.verbalizer,
                                        setup.config.seed)

    def run(self, ctx: SearchContext) -> None:
        """Train, checkpoint and score on dev every ``eval_every`` steps; resume from the last checkpoint."""
        cfg = self.config
        model, scorer = self.model, self.scorer
        if model is None or scorer is None or self.folder is None:
            raise UsageError(f"{self.name}: the engine must call build_scorer first")
        train = list(ctx.task.train)  # at most the run's train_limit
        done = sorted(ctx.events(TrainingCheckpoint), key=lambda e: e.step)
        best, stale, seconds = float("-inf"), 0, 0.0
        for event in done:  # dev scores come back from the journal
            acc = self._candidate(ctx, event.step)
            stale = 0 if acc > best else stale + 1
            best, seconds = max(best, acc), event.train_seconds
        current: Path | None = None  # the checkpoint the training weights equal
        if done:
            current = self.folder / done[-1].path
            model.restore(current)
        losses: list[float] = []
        for step in range(model.steps_done + 1, cfg.steps + 1):
            if cfg.patience is not None and stale >= cfg.patience:
                break
            batch = random.Random(f"{ctx.seed}:soft:{step}").sample(train, min(cfg.train_batch_size, len(train)))
            if model.loaded is not None and model.loaded != current and current is not None:
                model.restore(current)  # scoring another checkpoint replaced the training weights
            started = time.monotonic()
            with ctx.target.passes(2 * len(batch), 2 * model.input_tokens(batch, answers=True)):
                loss = model.train_step(batch)
            seconds += time.monotonic() - started
            losses.append(loss)
            ctx.status(f"{self.name} step {step}/{cfg.steps}: loss {sum(losses) / len(losses):.3f}"
                       + (f", best dev {best:.3f}" if best > float("-inf") else ""))
            if step % cfg.eval_every and step != cfg.steps:
                continue
            path = checkpoint_folder(step)
            current = self.folder / path
            model.save(current)
            model.loaded = current
            scorer.register(adapter_label(self.name, step), self.folder / path)
            ctx.status(f"{self.name} step {step}/{cfg.steps}: scoring the checkpoint on {len(ctx.dev)} dev examples")
            acc = self._candidate(ctx, step)
            cand = ctx.find(adapter_label(self.name, step))
            ctx.record(TrainingCheckpoint(method=self.name, step=step, path=path, candidate=cand.id if cand else "",
                                          train_loss=sum(losses) / len(losses), dev_acc=acc,
                                          trainable_params=model.trainable, train_examples=len(train),
                                          train_seconds=round(seconds, 3)))
            stale = 0 if acc > best else stale + 1
            best, losses = max(best, acc), []
            ctx.status(f"{self.name} step {step}/{cfg.steps}: dev {acc:.3f}, best dev {best:.3f}")

    def _candidate(self, ctx: SearchContext, step: int) -> float:
        """Register the checkpoint of ``step`` as a candidate and score it on dev; its dev accuracy."""
        text = adapter_label(self.name, step)
        ctx.trained[text] = 0 if self.method == "lora" else self.config.virtual_tokens
        cand = ctx.add(text, origin=self.name, round=step) or ctx.find(text)
        if cand is None:  # pragma: no cover - the label is never empty
            raise UsageError(f"{text!r} could not be registered")
        cand.dev = ctx.evaluate([text], ctx.dev, "dev")[text]
        return cand.dev.acc if cand.dev.acc is not None else float("-inf")


class PromptTuningSearch(SoftSearch):
    """Prompt tuning: trained virtual-token embeddings before the input."""

    name, method = "prompt-tuning", "prompt-tuning"


class PrefixTuningSearch(SoftSearch):
    """Prefix tuning: trained keys and values prepended at every layer."""

    name, method = "prefix-tuning", "prefix-tuning"


class PTuningSearch(SoftSearch):
    """P-tuning: virtual tokens produced by a trained prompt encoder (an MLP)."""

    name, method = "p-tuning", "p-tuning"


class LoRASearch(SoftSearch):
    """LoRA: trained low-rank updates of the attention projections."""

    name, method = "lora", "lora"
