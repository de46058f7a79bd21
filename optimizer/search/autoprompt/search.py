"""AutoPrompt (Shin et al. 2020, arXiv 2010.15980): gradient-guided search for trigger tokens.

A cloze template such as ``{sentence} [T] [T] [T] [P] .`` is filled with trigger tokens shared
by every example. Each iteration takes the gradient of the label loss with respect to the
trigger tokens' input embeddings over a batch of training examples, picks one slot (at random
or in turn), ranks the vocabulary by ``-gradient . embedding`` for that slot (the first-order
estimate of how much each replacement lowers the loss), filters special tokens, label words
and optionally word pieces, and compares the top-k candidates with the current trigger on a
fresh batch; the best candidate is kept only if its loss is lower. The loss is the
cross-entropy of the gold class, whose probability is the sum over its label words.

Every iteration is an event in the run's log (``trigger`` when a replacement was accepted,
with its ids, text, batch and train loss and dev score; ``autoprompt_step`` otherwise).
Randomness is drawn per iteration from the run seed, so a resumed run skips the recorded
iterations, restores the last accepted trigger and continues exactly as an uninterrupted run.

The pure functions (:func:`token_filter`, :func:`candidate_tokens`, :func:`replace_trigger`,
:func:`label_loss`) live in ``tokens.py``, the cloze scorer in ``scorer.py``; this module is the loop.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from functools import partial
from typing import TYPE_CHECKING

from optimizer.config import AutoPromptConfig
from optimizer.errors import UsageError
from optimizer.models.base import WHITEBOX
from optimizer.run.events import AutoPromptStep, LabelWordsChosen, TriggerAccepted
from optimizer.search.autoprompt.cloze_model import ClozeModel, Verbalizer
from optimizer.search.autoprompt.scorer import ClozeScorer
from optimizer.search.autoprompt.tokens import candidate_tokens, label_loss, replace_trigger, token_filter
from optimizer.tasks.cloze import default_template, parse_template
from optimizer.types import Example

if TYPE_CHECKING:
    from optimizer.run.context import ScorerSetup, SearchContext

__all__ = ["AutoPromptSearch", "candidate_tokens", "label_loss", "replace_trigger", "token_filter"]



class AutoPromptSearch:
    """The AutoPrompt searcher.

    Args:
        config: its parameters.
    """

    name = "autoprompt"
    requires = frozenset({WHITEBOX})

    def __init__(self, config: AutoPromptConfig | None = None) -> None:
        self.config = config or AutoPromptConfig()
        self.model: ClozeModel | None = None
        self.scorer: ClozeScorer | None = None

    # -- setup --------------------------------------------------------------------------------
    def build_scorer(self, setup: ScorerSetup) -> ClozeScorer:
        """Wrap the target as a cloze model; the run scores cloze prompts with the returned scorer."""
        cfg = self.config
        box = setup.target.whitebox()
        model = self.model = ClozeModel(box.model, box.tokenizer, kind=box.kind, lock=box.lock,
                                        passes=setup.target.passes, max_rows=cfg.max_rows)
        template = parse_template(cfg.cloze_template or default_template(cfg.trigger_tokens))
        if template.n_triggers == 0:
            raise UsageError(f"template {template.text!r} has no [T] trigger slot; add at least one")
        label_words: dict[str, list[str]] | None
        if cfg.auto_label_words is not None:
            from optimizer.search.autoprompt.label_search import find_label_words

            found = setup.events(LabelWordsChosen)
            if found:
                label_words = found[0].label_words
            else:
                label_words = find_label_words(model, template, setup.task, cfg.auto_label_words,
                                               seed=setup.config.seed)
                setup.record(LabelWordsChosen(label_words=label_words, auto=True))
        else:
            label_words = cfg.label_words
            if label_words is None and setup.task.labels:
                label_words = {label: [label] for label in setup.task.labels}
        verbalizer = Verbalizer(model, label_words, normalize=cfg.loss)
        if verbalizer.classes is not None:
            outputs = sorted({ex.output for ex in setup.task.train})
            unknown = [o for o in outputs if o not in verbalizer.classes]
            if unknown:
                example = ";".join(f"{c}=word" for c in outputs[:4])
                raise UsageError(f"task {setup.task.name!r} has outputs {unknown[:5]} that are not classes of the "
                                 f"label words ({', '.join(verbalizer.classes)}); fix: name every class, e.g. "
                                 f"--label-words '{example}'")
        self.scorer = ClozeScorer(model, template, verbalizer, setup.target)
        return self.scorer

    def _built(self) -> tuple[ClozeModel, ClozeScorer]:
        """The cloze model and scorer that :meth:`build_scorer` made."""
        if self.model is None or self.scorer is None:
            raise UsageError("AutoPromptSearch.run needs the engine to call build_scorer first")
        return self.model, self.scorer

    def _initial(self, model: ClozeModel, n: int) -> tuple[int, ...]:
        """The trigger of iteration 0: ``initial_trigger``'s words, else the filler token in each of ``n`` slots."""
        cfg = self.config
        if cfg.initial_trigger:
            words = cfg.initial_trigger.split()
            if len(words) != n:
                raise UsageError(f"initial trigger {cfg.initial_trigger!r} has {len(words)} words for {n} [T] slots")
            ids = []
            for w in words:
                tid = model.tokenizer.mask_token_id if w == model.tokenizer.mask_token else model.word_id(w)
                if tid is None:
                    raise UsageError(f"initial trigger word {w!r} is not a single token of this model")
                ids.append(tid)
            return tuple(ids)
        return (model.filler_id,) * n

    # -- loop ---------------------------------------------------------------------------------
    def run(self, ctx: SearchContext) -> None:
        """Search for ``iterations`` iterations (or until patience runs out), resuming recorded ones."""
        cfg = self.config
        model, ev = self._built()
        train = [ex for ex, g in zip(ctx.task.train, ev.gold(ctx.task.train)) if g is not None]
        if not train:
            raise UsageError(f"task {ctx.task.name!r}: no training example has a gold output that is a label "
                             "(or a single token of this model); check --label-words")
        train_eval = list(train)
        ctx.rng("autoprompt-train-eval").shuffle(train_eval)
        train_eval = train_eval[: cfg.train_eval_size]
        excluded = token_filter(model.tokenizer, model.vocab_size, exclude=ev.verbalizer.label_token_ids,
                                subwords=cfg.filter_subwords)
        embeddings = model.embeddings.weight

        done = sorted(ctx.events(TriggerAccepted) + ctx.events(AutoPromptStep), key=lambda e: e.iteration)
        accepted = [e for e in done if isinstance(e, TriggerAccepted)]
        for e in accepted:  # restore candidates (and their dev scores, from the journal) in order
            self._accept(ctx, tuple(e.trigger_ids), e.iteration, None, replay=True)
        if accepted:
            trigger = tuple(accepted[-1].trigger_ids)
            start = done[-1].iteration + 1
            stale = done[-1].stale
            passes = done[-1].passes  # pass counts in events are cumulative over sessions
            model.forward_rows += passes.get("forward", 0)
            model.backward_rows += passes.get("backward", 0)
        else:
            trigger = self._initial(model, ev.template.n_triggers)
            self._accept(ctx, trigger, 0, None, train_eval=train_eval)
            start, stale = 1, 0

        n = len(trigger)
        for it in range(start, cfg.iterations + 1):
            if cfg.patience is not None and stale >= cfg.patience:
                break
            rng = random.Random(f"{ctx.seed}:autoprompt:{it}")
            grad_batch = rng.sample(train, min(cfg.gradient_batch_size, len(train)))
            eval_batch = rng.sample(train, min(cfg.eval_batch_size, len(train)))
            pos = rng.randrange(n) if cfg.position == "random" else (it - 1) % n
            ctx.status(f"autoprompt iteration {it}/{cfg.iterations}: slot {pos}, trigger "
                                f"{' '.join(model.token_text(t) for t in trigger)}")
            encs = [model.encode(ev.template, ex.input, trigger) for ex in grad_batch]
            loss = partial(label_loss, gold=ev.known_gold(grad_batch), verbalizer=ev.verbalizer)
            grad, _ = model.trigger_gradient(encs, trigger, loss)
            proposed = candidate_tokens(grad[pos], embeddings, cfg.token_candidates, excluded)
            cands = [c for c in proposed if c != trigger[pos]]
            losses = ev.losses(eval_batch, [trigger] + [replace_trigger(trigger, pos, c) for c in cands])
            current, rest = losses[0], losses[1:]
            best = min(range(len(rest)), key=rest.__getitem__) if rest else None
            step = AutoPromptStep(iteration=it, position=pos, candidates=len(cands), batch_loss_before=current,
                                  passes={"forward": model.forward_rows, "backward": model.backward_rows})
            if best is not None and rest[best] < current:
                trigger = replace_trigger(trigger, pos, cands[best])
                stale = 0
                self._accept(ctx, trigger, it, step, batch_loss=rest[best], train_eval=train_eval)
            else:
                stale += 1
                step.stale = stale
                step.best_candidate_loss = rest[best] if best is not None else None
                ctx.record(step)

    def _accept(self, ctx: SearchContext, trigger: tuple[int, ...], iteration: int, step: AutoPromptStep | None, *,
                batch_loss: float | None = None, replay: bool = False, train_eval: Sequence[Example] = ()) -> None:
        """Register an accepted trigger as a candidate, score it on dev and (unless replaying) record it.

        ``step`` is the iteration that found the trigger (its slot, candidates and loss before), None for
        iteration 0; ``batch_loss`` is the trigger's loss on that iteration's comparison batch.
        """
        model, ev = self._built()
        text = ev.render(trigger, is_taken=lambda t: ctx.find(t) is not None)
        cand = ctx.add(text, origin="autoprompt", round=iteration) or ctx.find(text)
        if cand is None:  # pragma: no cover - add() refuses only empty or known texts
            raise UsageError(f"trigger text {text!r} is empty")
        cand.dev = ctx.evaluate([text], ctx.dev, "dev")[text]
        if replay:
            return
        train_loss = ev.losses(train_eval, [trigger])[0]
        found = step or AutoPromptStep(iteration=iteration)
        ctx.record(TriggerAccepted(
            iteration=iteration, position=found.position, candidates=found.candidates,
            batch_loss_before=found.batch_loss_before, batch_loss=batch_loss,
            passes={"forward": model.forward_rows, "backward": model.backward_rows}, trigger_ids=list(trigger),
            trigger_tokens=[model.token_text(t) for t in trigger], text=text, candidate=cand.id,
            train_loss=train_loss, train_n=len(train_eval), dev_acc=cand.dev.acc, dev_lp=cand.dev.lp,
            dev_n=cand.dev.n, stale=0,
        ))
