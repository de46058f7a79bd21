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
:func:`label_loss`) work on tensors; :class:`AutoPromptSearch` is the loop.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch

from optimizer.models.base import WHITEBOX
from optimizer.tasks.cloze import ClozeTemplate, default_template, parse_template
from optimizer.config import AutoPromptConfig
from optimizer.errors import UsageError
from optimizer.run.scoring import ScoreRecord, instruction_hash
from optimizer.search.autoprompt.cloze_model import ClozeModel, Encoded, Verbalizer, special_ids
from optimizer.tasks.templates import normalize_instruction
from optimizer.types import Example

if TYPE_CHECKING:
    from optimizer.run.engine import SearchContext

__all__ = ["AutoPromptSearch", "ClozeEvaluator", "candidate_tokens", "label_loss", "replace_trigger", "token_filter"]

_BRACKETED = re.compile(r"^(\[.*\]|<.*>)$")


# ------------------------------------------------------------------------------ pure functions

def token_filter(tokenizer, vocab_size: int, *, exclude: set[int] = frozenset(), subwords: bool = True) -> torch.Tensor:
    """A boolean mask over the vocabulary of tokens that may not be trigger candidates.

    Excluded: special and added tokens, ``exclude`` (label words), tokens that are empty after
    decoding or look like markup (``[unused0]``, ``<pad>``), and with ``subwords`` the pieces that
    continue a word (WordPiece ``##…``; byte-level BPE and SentencePiece tokens without a leading
    space marker).

    Args:
        tokenizer: the model's tokenizer.
        vocab_size: rows of the embedding matrix.
        exclude: more ids to exclude.
        subwords: also exclude word-continuation pieces.

    Returns:
        ``mask[i]`` is True when token ``i`` is excluded.
    """
    mask = torch.zeros(vocab_size, dtype=torch.bool)
    tokens = tokenizer.convert_ids_to_tokens(list(range(min(vocab_size, len(tokenizer)))))
    style = "bpe" if any(t.startswith("Ġ") for t in tokens[:5000] if t) else (
        "sp" if any(t.startswith("▁") for t in tokens[:5000] if t) else "wordpiece")
    for i, tok in enumerate(tokens):
        if tok is None:
            mask[i] = True
            continue
        bare = tok.lstrip("Ġ▁").removeprefix("##")
        if not bare.strip() or _BRACKETED.match(tok):
            mask[i] = True
        elif subwords and ((style == "wordpiece" and tok.startswith("##"))
                           or (style == "bpe" and not tok.startswith("Ġ"))
                           or (style == "sp" and not tok.startswith("▁"))):
            mask[i] = True
    mask[len(tokens):] = True
    mask[list(special_ids(tokenizer, vocab_size) | {i for i in exclude if 0 <= i < vocab_size})] = True
    return mask


def candidate_tokens(gradient: torch.Tensor, embeddings: torch.Tensor, k: int,
                     excluded: torch.Tensor | None = None) -> list[int]:
    """The top-k replacement tokens for one trigger slot by ``-gradient . embedding`` (HotFlip).

    Args:
        gradient: the loss gradient at the slot's input embedding (hidden,).
        embeddings: the input embedding matrix (vocab x hidden).
        k: how many candidates.
        excluded: boolean mask of tokens never proposed (see :func:`token_filter`).

    Returns:
        ``k`` token ids (fewer if fewer are allowed), best first.
    """
    scores = -(embeddings.detach() @ gradient.to(embeddings.dtype))
    if excluded is not None:
        scores = scores.masked_fill(excluded.to(scores.device), float("-inf"))
    allowed = int(torch.isfinite(scores).sum())
    return scores.topk(min(k, allowed)).indices.tolist()


def replace_trigger(trigger: Sequence[int], position: int, token: int) -> tuple[int, ...]:
    """The trigger with slot ``position`` set to ``token``."""
    out = list(trigger)
    out[position] = token
    return tuple(out)


def label_loss(logprobs: torch.Tensor, gold: Sequence[int], verbalizer: Verbalizer) -> torch.Tensor:
    """Mean cross-entropy of the gold class over a batch (the class probability sums its label words).

    Args:
        logprobs: log-softmax over the vocabulary at the prediction slot (B x V).
        gold: gold class indices (or gold token ids when the verbalizer is open-vocabulary).
        verbalizer: the label words.

    Returns:
        A scalar tensor.
    """
    return -verbalizer.score(logprobs, gold)[0].mean()


def _with_trigger(enc: Encoded, trigger: Sequence[int]) -> Encoded:
    ids = list(enc.ids)
    for pos, tok in zip(enc.triggers, trigger):
        ids[pos] = tok
    return Encoded(tuple(ids), enc.triggers, enc.predict)


# ------------------------------------------------------------------------------ scoring prompts

class ClozeEvaluator:
    """Scores cloze prompts with a white-box model; the same interface as :class:`~optimizer.run.scoring.Evaluator`.

    A prompt's text is either a registered trigger prompt (its ids are kept, never re-tokenized),
    a template without trigger slots (a manual template such as ``{sentence} It was [P] .``), or
    ``""`` (the search template with its trigger slots removed). Accuracy is 1 when the class
    with the highest summed label-word probability is the gold one (open vocabulary: when the
    top non-special token is the gold object, P@1); the log-probability is the gold class's.

    Args:
        model: the cloze model.
        template: the search template.
        verbalizer: the label words.
        journal: recorded scores; updated as scores arrive.
        record: called with the new events of each batch.
        batch_size: examples per forward pass.
    """

    def __init__(self, model: ClozeModel, template: ClozeTemplate, verbalizer: Verbalizer, journal, record,
                 batch_size: int = 64) -> None:
        self.model = model
        self.template = template
        self.verbalizer = verbalizer
        self.journal = journal
        self.record = record
        self.batch_size = batch_size
        self.prompts: dict[str, tuple[ClozeTemplate, tuple[int, ...]]] = {}
        self.on_scored = None
        self.client = None  # the target's ModelClient (its ledger shows the spend in progress displays)

    def render(self, trigger: Sequence[int], taken: set[str] = frozenset()) -> str:
        """A unique display text for a trigger in the search template, registered for scoring."""
        trigger = tuple(trigger)
        tok = self.model.tokenizer
        forms = ([self.model.token_text(t) for t in trigger], tok.convert_ids_to_tokens(list(trigger)),
                 [f"{self.model.token_text(t)}<{t}>" for t in trigger])
        for words in forms:
            text = self.template.with_triggers(list(words))
            known = self.prompts.get(text)
            if known is not None and known[1] == trigger:
                return text
            if known is None and normalize_instruction(text) not in taken:
                self.prompts[text] = (self.template, trigger)
                return text
        raise UsageError(f"cannot give trigger {trigger} a unique text")  # pragma: no cover

    def spec(self, text: str) -> tuple[ClozeTemplate, tuple[int, ...]]:
        """The template and trigger ids behind a prompt text."""
        if text in self.prompts:
            return self.prompts[text]
        parsed = parse_template(text) if text else parse_template(self.template.without_triggers())
        if parsed.n_triggers:
            raise UsageError(f"prompt {text!r} has trigger slots but no trigger ids; triggers are scored by their ids")
        return parsed, ()

    def gold(self, examples: Sequence[Example]) -> list[int | None]:
        """Gold class (or token) of each example; None when its output has no label token."""
        return [self.verbalizer.gold(ex.output) for ex in examples]

    def losses(self, examples: Sequence[Example], triggers: Sequence[Sequence[int]]) -> list[float]:
        """Mean label loss of each trigger (search template) over ``examples`` (no gradient)."""
        gold = self.gold(examples)
        base = [self.model.encode(self.template, ex.input, triggers[0]) for ex in examples]
        encs = [_with_trigger(e, t) for t in triggers for e in base]
        lp, _ = self.verbalizer.score(self.model.logprobs(encs), [g for _ in triggers for g in gold])
        return (-lp.view(len(triggers), len(examples)).mean(-1)).tolist()

    def score(self, instructions: Sequence[str], examples: Sequence[Example], split: str, *,
              accuracy: bool = True, logprob: bool = False) -> dict[str, dict[str, ScoreRecord]]:
        """Score every prompt on every example (both accuracy and log-probability), journalled."""
        for text in dict.fromkeys(instructions):
            ih = instruction_hash(text)
            todo = [ex for ex in examples if (split, ih, ex.id) not in self.journal.scores
                    or self.journal.scores[(split, ih, ex.id)].acc is None]
            if not todo:
                continue
            template, trigger = self.spec(text)
            for start in range(0, len(todo), self.batch_size):
                chunk = todo[start : start + self.batch_size]
                gold = self.gold(chunk)
                usable = [i for i, g in enumerate(gold) if g is not None]
                results: dict[int, tuple[float, int]] = {}
                if usable:
                    encs = [self.model.encode(template, chunk[i].input, trigger) for i in usable]
                    lp, pred = self.verbalizer.score(self.model.logprobs(encs), [gold[i] for i in usable])
                    results = {i: (float(v), p) for i, v, p in zip(usable, lp.tolist(), pred)}
                events = []
                for i, ex in enumerate(chunk):
                    key = (split, ih, ex.id)
                    if i in results:
                        value, pred = results[i]
                        rec = ScoreRecord(acc=float(pred == gold[i]), lp=value, output=self.verbalizer.name_of(pred))
                    else:
                        rec = ScoreRecord(acc=0.0, error=f"gold output {ex.output!r} is not a label of the verbalizer "
                                                         "(or not a single token of this model)")
                    self.journal.scores[key] = rec
                    event = {"type": "score", "split": split, "ih": ih, "ex": ex.id, "acc": rec.acc, "lp": rec.lp,
                             "out": rec.output}
                    if rec.error:
                        event["error"] = rec.error
                    events.append(event)
                self.record(*events)
                if self.on_scored:
                    self.on_scored(len(chunk))
        return {text: {ex.id: self.journal.scores[(split, instruction_hash(text), ex.id)] for ex in examples}
                for text in dict.fromkeys(instructions)}


# ------------------------------------------------------------------------------ the search

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
        self.evaluator: ClozeEvaluator | None = None

    # -- setup --------------------------------------------------------------------------------
    def prepare(self, ctx: "SearchContext") -> None:
        """Wrap the target as a cloze model and make the run's evaluator score cloze prompts."""
        cfg = self.config
        adapter = ctx.target.adapter
        kind = getattr(adapter, "kind", "causal")
        usage = ctx.ledger.role("target")

        seen = [0.0]

        def account(calls: int, tokens: int) -> None:
            ctx.ledger.check(calls)
            usage.calls += calls
            usage.prompt_tokens += tokens
            usage.seconds += self.model.seconds - seen[0]  # time of the passes since the last call
            seen[0] = self.model.seconds

        self.model = ClozeModel(adapter.model, adapter.tokenizer, kind=kind, lock=adapter.lock, account=account,
                                max_rows=cfg.max_rows)
        template = parse_template(cfg.cloze_template or default_template(cfg.trigger_tokens))
        if template.n_triggers == 0:
            raise UsageError(f"template {template.text!r} has no [T] trigger slot; add at least one")
        if cfg.auto_label_words is not None:
            from optimizer.search.autoprompt.label_search import find_label_words

            found = next((e for e in ctx.store.events() if e.get("type") == "label_words"), None)
            label_words = found["label_words"] if found else find_label_words(
                self.model, template, ctx.task, cfg.auto_label_words, seed=ctx.seed)
            if not found:
                ctx.record({"type": "label_words", "label_words": label_words, "auto": True})
        else:
            label_words = cfg.label_words
            if label_words is None and ctx.task.labels:
                label_words = {label: [label] for label in ctx.task.labels}
        verbalizer = Verbalizer(self.model, label_words, normalize=cfg.loss)
        if verbalizer.classes is not None:
            outputs = sorted({ex.output for ex in ctx.task.train})
            unknown = [o for o in outputs if o not in verbalizer.classes]
            if unknown:
                raise UsageError(f"task {ctx.task.name!r} has outputs {unknown[:5]} that are not classes of the label "
                                 f"words ({', '.join(verbalizer.classes)}); fix: name every class, e.g. --label-words "
                                 f"'{';'.join(f'{c}=word' for c in outputs[:4])}'")
        self.evaluator = ClozeEvaluator(self.model, template, verbalizer, ctx.journal, ctx.record,
                                        batch_size=ctx.config.score_batch_size)
        self.evaluator.client = ctx.target
        ctx.evaluator = self.evaluator

    def _initial(self) -> tuple[int, ...]:
        cfg, model = self.config, self.model
        n = self.evaluator.template.n_triggers
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
    def run(self, ctx: "SearchContext") -> None:
        """Search for ``iterations`` iterations (or until patience runs out), resuming recorded ones."""
        cfg = self.config
        if self.model is None:
            self.prepare(ctx)
        model, ev = self.model, self.evaluator
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

        done = [e for e in ctx.store.events() if e.get("type") in ("trigger", "autoprompt_step")]
        accepted = [e for e in done if e["type"] == "trigger"]
        for e in accepted:  # restore candidates (and their dev scores, from the journal) in order
            self._accept(ctx, tuple(e["trigger_ids"]), e["iteration"], None, replay=True)
        if accepted:
            trigger = tuple(accepted[-1]["trigger_ids"])
            start = done[-1]["iteration"] + 1
            stale = done[-1].get("stale", 0)
            passes = done[-1].get("passes", {})  # pass counts in events are cumulative over sessions
            model.forward_rows += passes.get("forward", 0)
            model.backward_rows += passes.get("backward", 0)
        else:
            trigger = self._initial()
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
            ctx.reporter.status(f"autoprompt iteration {it}/{cfg.iterations}: slot {pos}, trigger "
                                f"{' '.join(model.token_text(t) for t in trigger)}")
            encs = [model.encode(ev.template, ex.input, trigger) for ex in grad_batch]
            gold = ev.gold(grad_batch)
            grad, _ = model.trigger_gradient(encs, trigger, lambda lp: label_loss(lp, gold, ev.verbalizer))
            cands = [c for c in candidate_tokens(grad[pos], embeddings, cfg.token_candidates, excluded) if c != trigger[pos]]
            losses = ev.losses(eval_batch, [trigger] + [replace_trigger(trigger, pos, c) for c in cands])
            current, rest = losses[0], losses[1:]
            best = min(range(len(rest)), key=rest.__getitem__) if rest else None
            step = {"iteration": it, "position": pos, "candidates": len(cands), "batch_loss_before": current,
                    "passes": {"forward": model.forward_rows, "backward": model.backward_rows}}
            if best is not None and rest[best] < current:
                trigger = replace_trigger(trigger, pos, cands[best])
                stale = 0
                self._accept(ctx, trigger, it, {**step, "batch_loss": rest[best]}, train_eval=train_eval)
            else:
                stale += 1
                ctx.record({"type": "autoprompt_step", **step, "accepted": False, "stale": stale,
                            "best_candidate_loss": rest[best] if best is not None else None})

    def _accept(self, ctx: "SearchContext", trigger: tuple[int, ...], iteration: int, step: dict | None, *,
                replay: bool = False, train_eval: Sequence[Example] = ()) -> None:
        """Register an accepted trigger as a candidate, score it on dev and (unless replaying) record it."""
        ev = self.evaluator
        text = ev.render(trigger, taken=set(ctx._by_norm))
        cand = ctx.add(text, origin="autoprompt", round=iteration)
        if cand is None:  # the same trigger again: its candidate already exists
            cand = ctx.candidates[ctx._by_norm[normalize_instruction(text)]]
        cand.dev = ctx.evaluate([text], ctx.dev, "dev")[text]
        if replay:
            return
        train_loss = ev.losses(train_eval, [trigger])[0]
        ctx.record({
            "type": "trigger", "iteration": iteration, "accepted": True, **(step or {}),
            "trigger_ids": list(trigger), "trigger_tokens": [self.model.token_text(t) for t in trigger],
            "text": text, "candidate": cand.id, "train_loss": train_loss, "train_n": len(train_eval),
            "dev_acc": cand.dev.acc, "dev_lp": cand.dev.lp, "dev_n": cand.dev.n, "stale": 0,
            "passes": {"forward": self.model.forward_rows, "backward": self.model.backward_rows},
        })
