"""A white-box language model read through a cloze template: encoding, batched passes, label scores.

:class:`ClozeModel` wraps any transformers masked LM (the prediction is read at its mask
token) or causal LM (the prediction is the next token after the prompt). It builds input ids
segment by segment from a :class:`~optimizer.tasks.cloze.ClozeTemplate`, so trigger tokens are
spliced in as ids (never re-tokenized), and computes only the logits at the prediction slot.
Every pass is booked through ``passes(rows, tokens)`` (one call = one example through the
model forward; a backward pass counts again), which also enforces the run's budget.

Imports torch.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass

import torch

from optimizer.errors import UsageError
from optimizer.search.autoprompt.shared_prefix import shared_gradient, shared_groups, shared_logprobs, splits_at_trigger
from optimizer.tasks.cloze import ClozeTemplate

__all__ = ["ClozeModel", "Encoded", "Verbalizer", "special_ids"]


def special_ids(tokenizer, vocab_size: int) -> set[int]:
    """Ids of the tokenizer's special and added tokens that are rows of a ``vocab_size`` embedding."""
    special = set(tokenizer.all_special_ids) | set(getattr(tokenizer, "added_tokens_decoder", {}) or {})
    return {i for i in special if i is not None and 0 <= i < vocab_size}


@dataclass(frozen=True)
class Encoded:
    """One example in one template, as ids."""

    ids: tuple[int, ...]
    """Input ids (special tokens included); trigger slots hold the trigger given to encode()."""
    triggers: tuple[int, ...]
    """Positions of the trigger slots, in template order."""
    predict: int
    """Position whose output predicts the label."""


class Verbalizer:
    """Label words as token ids: per class, or the gold output itself over the whole vocabulary.

    Args:
        model: the cloze model (for tokenization).
        label_words: ``{class: [words]}``; None for open-vocabulary prediction (fact retrieval).
        normalize: ``vocab`` (the paper: a class's probability is the summed probability of its
            words under the softmax over the whole vocabulary) or ``labels`` (renormalized over the
            classes, a plain classifier over the label words).
    """

    def __init__(self, model: ClozeModel, label_words: dict[str, list[str]] | None, *,
                 normalize: str = "vocab") -> None:
        if normalize not in ("vocab", "labels"):
            raise ValueError(f"normalize must be vocab or labels, not {normalize!r}")
        self.model = model
        self.normalize = normalize
        self.classes = list(label_words) if label_words else None
        self.class_ids: list[list[int]] = []
        if label_words:
            for label, words in label_words.items():
                ids = []
                for word in words:
                    tid = model.word_id(word)
                    if tid is None:
                        pieces = model.tokenizer.tokenize(model.word_text(word))
                        raise UsageError(f"label word {word!r} (class {label!r}) is {pieces} for this model; "
                                         "label words must be single tokens of its vocabulary; pick another word")
                    ids.append(tid)
                self.class_ids.append(ids)

    @property
    def label_token_ids(self) -> set[int]:
        """Every label word's id (filtered out of trigger candidates)."""
        return {i for ids in self.class_ids for i in ids}

    def gold(self, output: str) -> int | None:
        """The gold class index (or gold token id in open mode) of an output; None when unusable."""
        if self.classes is not None:
            return self.classes.index(output) if output in self.classes else None
        return self.model.word_id(output)

    def class_logprobs(self, logprobs: torch.Tensor) -> torch.Tensor:
        """Log-probability of each class: log of the summed probabilities of its label words (B x C)."""
        return torch.stack([torch.logsumexp(logprobs[:, ids], dim=-1) for ids in self.class_ids], dim=-1)

    def score(self, logprobs: torch.Tensor, gold: Sequence[int]) -> tuple[torch.Tensor, list[int]]:
        """Per-example gold log-probability and predicted class (or token id).

        Args:
            logprobs: log-softmax over the vocabulary at the prediction slot (B x V).
            gold: gold class indices (or token ids in open mode).

        Returns:
            (gold log-probabilities, predictions).
        """
        index = torch.tensor(list(gold), device=logprobs.device)
        if self.classes is not None:
            lp = self.class_logprobs(logprobs)
            if self.normalize == "labels":
                lp = lp - torch.logsumexp(lp, dim=-1, keepdim=True)
            return lp.gather(1, index[:, None])[:, 0], lp.argmax(-1).tolist()
        masked = logprobs.masked_fill(self.model.special_mask, float("-inf"))
        return logprobs.gather(1, index[:, None])[:, 0], masked.argmax(-1).tolist()

    def name_of(self, prediction: int) -> str:
        """The class name, or the token text in open mode."""
        if self.classes is not None:
            return self.classes[prediction]
        return self.model.tokenizer.decode([prediction]).strip()


class ClozeModel:
    """A masked or causal LM read through cloze templates.

    Args:
        model: a transformers model with an LM head.
        tokenizer: its tokenizer.
        kind: ``masked`` or ``causal``.
        lock: serialises passes when the model is shared.
        passes: ``(rows, tokens) -> context manager`` wrapped around each pass, which books it and checks the
            budget first (may raise BudgetExceeded); the target client's ``passes``.
        max_rows: most rows (examples x candidates) in one forward pass.
    """

    def __init__(self, model, tokenizer, *, kind: str, lock=None,
                 passes: Callable[[int, int], AbstractContextManager[None]] | None = None, max_rows: int = 128) -> None:
        if kind not in ("masked", "causal"):
            raise ValueError(f"kind must be masked or causal, not {kind!r}")
        if kind == "masked" and tokenizer.mask_token_id is None:
            raise UsageError(
                "this tokenizer has no mask token; a masked LM is needed (or a causal LM as kind='causal')"
            )
        self.model = model
        self.tokenizer = tokenizer
        self.kind = kind
        self.lock = lock
        self.passes = passes or (lambda rows, tokens: nullcontext())
        self.max_rows = max_rows
        self.embeddings = model.get_input_embeddings()
        self.head = model.get_output_embeddings()
        if self.head is None:
            raise UsageError("model has no output embeddings (LM head); AutoPrompt needs a masked or causal LM")
        self.device = self.embeddings.weight.device
        self.vocab_size = self.embeddings.weight.shape[0]
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else (tokenizer.eos_token_id or 0)
        self.special_mask = torch.zeros(self.vocab_size, dtype=torch.bool, device=self.device)
        self.special_mask[list(special_ids(tokenizer, self.vocab_size))] = True
        # The special tokens the tokenizer adds around a text ([CLS] … [SEP], <s> … </s>, a BOS):
        with_special = tokenizer("a", add_special_tokens=True)["input_ids"]
        plain = tokenizer("a", add_special_tokens=False)["input_ids"]
        at = next((i for i in range(len(with_special)) if with_special[i : i + len(plain)] == plain), 0)
        self._prefix = list(with_special[:at])
        self._suffix = list(with_special[at + len(plain):]) if kind == "masked" else []
        self.max_length = min(int(getattr(tokenizer, "model_max_length", 512) or 512), 4096)
        self.forward_rows = 0
        self.backward_rows = 0

    # -- tokens ---------------------------------------------------------------------------------
    def word_text(self, word: str) -> str:
        """The text whose tokenization is ``word`` as it appears after a space."""
        return " " + word.strip()

    def word_id(self, word: str) -> int | None:
        """The single token id of ``word`` after a space, or None when it is several tokens (or unknown)."""
        ids = self.tokenizer(self.word_text(word), add_special_tokens=False)["input_ids"]
        unk = self.tokenizer.unk_token_id
        return ids[0] if len(ids) == 1 and (unk is None or ids[0] != unk) else None

    @property
    def filler_id(self) -> int:
        """The token a trigger slot holds before the search: the mask token, or ``the`` for a causal LM.

        Raises:
            UsageError: a causal LM whose tokenizer has no single token for `` the``.
        """
        filler = self.tokenizer.mask_token_id if self.kind == "masked" else self.word_id("the")
        if filler is None:
            raise UsageError("this tokenizer has no single token for ' the', the trigger's starting word; "
                             "give a starting trigger (--initial-trigger)")
        return filler

    def token_text(self, token_id: int) -> str:
        """A token's text for display."""
        return self.tokenizer.decode([token_id]).strip() or self.tokenizer.convert_ids_to_tokens(token_id)

    def _piece(self, text: str, space: bool) -> list[int]:
        return self.tokenizer((" " if space else "") + text, add_special_tokens=False)["input_ids"]

    def encode(self, template: ClozeTemplate, text: str, trigger: Sequence[int]) -> Encoded:
        """Ids of one example in a template, with ``trigger`` in its slots.

        Args:
            template: the parsed template.
            text: the example's input.
            trigger: one token id per ``[T]`` slot.

        Returns:
            The encoded example.
        """
        if len(trigger) != template.n_triggers or any(not isinstance(t, int) for t in trigger):
            raise ValueError(f"trigger {trigger} does not fill the {template.n_triggers} slots with token ids")
        values = template.field_values(text)
        parts: list[tuple[str, list[int]]] = []
        it = iter(trigger)
        seen_predict = False
        for seg in template.segments:
            if seen_predict and self.kind == "causal":
                if seg.kind in ("field", "trigger"):
                    raise UsageError(f"template {template.text!r}: a causal LM predicts the next token, so [P] must "
                                     "come after every input and trigger slot")
                continue
            if seg.kind == "text":
                parts.append(("text", self._piece(seg.value, seg.space)))
            elif seg.kind == "field":
                parts.append(("field", self._piece(values[seg.value].strip(), seg.space)))
            elif seg.kind == "trigger":
                parts.append(("trigger", [next(it)]))
            else:
                seen_predict = True
                parts.append(("predict", [self.tokenizer.mask_token_id] if self.kind == "masked" else []))
        budget = self.max_length - 4 - sum(len(p) for k, p in parts if k != "field")
        field_len = sum(len(p) for k, p in parts if k == "field")
        for k, p in parts:  # cut long inputs so the whole prompt fits the model
            if k == "field" and field_len > budget:
                cut = min(len(p), field_len - budget)
                del p[len(p) - cut:]
                field_len -= cut
        body: list[int] = []
        triggers, predict = [], -1
        for kind, piece in parts:
            if kind == "trigger":
                triggers.append(len(body))
            if kind == "predict":
                predict = len(body) if self.kind == "masked" else len(body) - 1
            body.extend(piece)
        ids, shift = self._prefix + body + self._suffix, len(self._prefix)
        if predict + shift < 0:
            raise UsageError(f"template {template.text!r}: nothing precedes [P]")
        triggers = [t + shift for t in triggers]
        predict += shift
        return Encoded(tuple(ids), tuple(triggers), predict)

    # -- passes ---------------------------------------------------------------------------------
    @contextmanager
    def _only_predict(self, positions: torch.Tensor):
        """Compute the LM head only at the prediction slot of each row (B x 1 x V logits)."""
        rows = torch.arange(positions.shape[0], device=self.device)

        def pick(module, args):
            return (args[0][rows, positions].unsqueeze(1), *args[1:])

        handle = self.head.register_forward_pre_hook(pick)
        try:
            yield
        finally:
            handle.remove()

    def _batch(self, encs: Sequence[Encoded]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        width = max(len(e.ids) for e in encs)
        ids = torch.full((len(encs), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(encs), width), dtype=torch.long)
        for i, e in enumerate(encs):
            ids[i, : len(e.ids)] = torch.tensor(e.ids)
            mask[i, : len(e.ids)] = 1
        predict = torch.tensor([e.predict for e in encs])
        return ids.to(self.device), mask.to(self.device), predict.to(self.device)

    def _forward(self, mask, predict, *, ids=None, embeds=None) -> torch.Tensor:
        with self._only_predict(predict):
            out = self.model(input_ids=ids, inputs_embeds=embeds, attention_mask=mask)
        return torch.log_softmax(out.logits[:, 0, :].float(), dim=-1)

    def _locked(self):
        return self.lock if self.lock is not None else nullcontext()

    def _forward_chunks(self, encs: Sequence[Encoded]):
        """Batches of at most ``max_rows`` examples as (ids, mask, predict), each booked and timed as a forward pass."""
        for start in range(0, len(encs), self.max_rows):
            chunk = encs[start : start + self.max_rows]
            with self.passes(len(chunk), sum(len(e.ids) for e in chunk)):
                yield self._batch(chunk)
            self.forward_rows += len(chunk)

    @staticmethod
    def _by_length(encs: Sequence[Encoded]) -> tuple[list[Encoded], torch.Tensor]:
        """The examples shortest first (rows of like length share a pass: less padding), and the index that puts
        rows computed in that order back in the given one."""
        order = sorted(range(len(encs)), key=lambda i: len(encs[i].ids))
        back = torch.empty(len(encs), dtype=torch.long)
        back[torch.tensor(order, dtype=torch.long)] = torch.arange(len(encs))
        return [encs[i] for i in order], back

    def logprobs(self, encs: Sequence[Encoded]) -> torch.Tensor:
        """Log-softmax over the vocabulary at each example's prediction slot (no gradient)."""
        groups = shared_groups(encs) if self.kind == "causal" else None
        if groups is not None:  # rows that differ only from their trigger on: their shared text runs once
            return shared_logprobs(self, encs, groups)
        ordered, back = self._by_length(encs)
        out = []
        for ids, mask, predict in self._forward_chunks(ordered):
            with self._locked(), torch.no_grad():
                out.append(self._forward(mask, predict, ids=ids))
        return torch.cat(out)[back.to(self.device)]

    def predict_hidden(self, encs: Sequence[Encoded]) -> torch.Tensor:
        """The hidden state the LM head reads at each example's prediction slot (B x hidden, no gradient)."""
        ordered, back = self._by_length(encs)
        seen: list[torch.Tensor] = []
        for ids, mask, predict in self._forward_chunks(ordered):
            with self._locked(), torch.no_grad(), self._only_predict(predict):
                handle = self.head.register_forward_pre_hook(lambda module, args: seen.append(args[0][:, 0]))
                try:
                    self.model(input_ids=ids, attention_mask=mask)
                finally:
                    handle.remove()
        return torch.cat(seen)[back.to(self.device)]

    def trigger_gradient(self, encs: Sequence[Encoded], trigger: Sequence[int],
                         loss_fn: Callable[[torch.Tensor], torch.Tensor]) -> tuple[torch.Tensor, float]:
        """Gradient of the loss with respect to the trigger tokens' input embeddings.

        Args:
            encs: the batch (every example encoded with ``trigger``).
            trigger: the trigger ids (one per slot).
            loss_fn: maps the batch's log-probabilities (B x V) to a scalar loss.

        Returns:
            (gradient, n_slots x hidden, summed over the batch's mean loss; the loss value).
        """
        if self.kind == "causal" and splits_at_trigger(encs):  # the text before the trigger needs no gradient
            return shared_gradient(self, encs, trigger, loss_fn)
        n = len(encs)
        ids, mask, predict = self._batch(encs)
        with self.passes(2 * n, 2 * sum(len(e.ids) for e in encs)), self._locked():
            weight = self.embeddings.weight
            trig = weight[torch.tensor(list(trigger), device=self.device)].detach().clone().requires_grad_(True)
            embeds = self.embeddings(ids).detach()
            rows = torch.arange(n, device=self.device)[:, None].expand(n, len(trigger))
            cols = torch.tensor([list(e.triggers) for e in encs], device=self.device)
            embeds = embeds.index_put((rows.reshape(-1), cols.reshape(-1)), trig.repeat(n, 1))
            loss = loss_fn(self._forward(mask, predict, embeds=embeds))
            (grad,) = torch.autograd.grad(loss, trig)
        self.forward_rows += n
        self.backward_rows += n
        return grad.detach(), float(loss.detach())
