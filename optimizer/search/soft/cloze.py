"""A trained prompt read through a cloze template (PET-style), for classification on a masked LM, or on a causal LM
whose task's instructions are cloze templates: the task's manual template (``{sentence} It was [P] .``) with the
prediction slot (a causal LM's next token after the text before ``[P]``) read through the label words of each
class, as AutoPrompt reads it.

Prompt tuning and P-tuning put their virtual tokens before the template; prefix tuning adds keys and values at
every layer; LoRA updates the attention's query and value projections. The loss is the cross-entropy of the gold
class, whose probability is the summed probability of its label words at the mask; the prediction is the class
with the highest. Baselines (the manual templates, no template) are scored by AutoPrompt's cloze scorer.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from optimizer.errors import UsageError
from optimizer.search.autoprompt.cloze_model import ClozeModel, Encoded, Verbalizer
from optimizer.search.soft.model import SoftModel
from optimizer.settings import SoftConfig, SoftMethod
from optimizer.tasks.cloze import ClozeTemplate
from optimizer.tasks.templates import ExecutionTemplate
from optimizer.types import Example

__all__ = ["ClozeSoftModel"]


class ClozeSoftModel(SoftModel):
    """A peft adapter on a copy of a masked (or causal) LM, trained and scored through a cloze template and label
    words.

    Args:
        method: the peft method.
        cfg: the searcher's parameters.
        cloze: the target wrapped as a cloze model (encoding; its weights are copied, never changed).
        template: the manual cloze template (one ``[P]``, no ``[T]``).
        verbalizer: the label words of each class.
        seed: the run seed.
    """

    task_type = "FEATURE_EXTRACTION"

    def __init__(self, method: SoftMethod, cfg: SoftConfig, cloze: ClozeModel, template: ClozeTemplate,
                 verbalizer: Verbalizer, seed: int) -> None:
        if template.n_triggers:
            raise UsageError(f"{method} trains on a manual cloze template; {template.text!r} has [T] slots")
        if verbalizer.classes is None:
            raise UsageError(f"{method} through a cloze template needs label words for each class (a classification "
                             "task)")
        super().__init__(method, cfg, cloze.model, cloze.tokenizer, ExecutionTemplate(), seed)
        self.cloze, self.cloze_template, self.verbalizer = cloze, template, verbalizer
        self._scored: dict[tuple[str, str], tuple[float, int]] = {}
        """Each example's gold-class log-probability and predicted class under the weights held now: one pass
        gives both, and scoring asks for them in two (emptied whenever the weights change)."""

    def _encode(self, examples: Sequence[Example]) -> list[Encoded]:
        return [self.cloze.encode(self.cloze_template, ex.input, ()) for ex in examples]

    def _class_logprobs(self, examples: Sequence[Example]) -> tuple[Any, list[int]]:
        """Gold-class log-probabilities (with gradient) and predicted classes."""
        import torch

        gold = [self.verbalizer.gold(ex.output) for ex in examples]
        if any(g is None for g in gold):
            bad = next(ex.output for ex, g in zip(examples, gold) if g is None)
            classes = ", ".join(self.verbalizer.classes or [])
            raise UsageError(f"output {bad!r} is not a class of the label words ({classes})")
        ids, mask, predict = self.cloze._batch(self._encode(examples))
        rows = torch.arange(len(examples), device=ids.device)

        def pick(module: Any, args: tuple) -> tuple:  # the LM head reads only each row's prediction slot
            at = predict + (args[0].shape[1] - ids.shape[1])  # after the virtual tokens, which come first
            return (args[0][rows, at].unsqueeze(1), *args[1:])

        handle = self.model.get_output_embeddings().register_forward_pre_hook(pick)
        try:
            logits = self.model(input_ids=ids, attention_mask=mask).logits
        finally:
            handle.remove()
        if logits.shape[1] == 1:
            at_slot = logits[:, 0]
        else:  # a model whose logits do not come from its output embeddings module: every position was computed
            at_slot = logits[:, -ids.shape[1]:][rows, predict]
        return self.verbalizer.score(torch.log_softmax(at_slot.float(), dim=-1), gold)  # type: ignore

    def input_tokens(self, examples: Sequence[Example], *, answers: bool) -> int:
        """The encoded template's tokens and the virtual ones (the class is read at the mask, never input)."""
        return sum(self.virtual_inputs + len(e.ids) for e in self._encode(examples))

    def train_step(self, batch: Sequence[Example]) -> float:
        """One AdamW step on the mean cross-entropy of the gold classes."""
        self.optimizer.zero_grad(set_to_none=True)
        lp, _ = self._class_logprobs(batch)
        loss = -lp.mean()
        loss.backward()
        self.optimizer.step()
        self.steps_done += 1
        self._scored.clear()
        return float(loss.detach())

    def load_adapter(self, folder: Path) -> None:
        """Set the trained parameters from a checkpoint (see SoftModel.load_adapter)."""
        self._scored.clear()
        super().load_adapter(folder)

    def _scores(self, examples: Sequence[Example]) -> list[tuple[float, int]]:
        """Gold-class log-probability and predicted class of each example (one pass for those not scored yet under
        these weights)."""
        import torch

        keys = [(ex.input, ex.output) for ex in examples]
        todo = [ex for ex, key in zip(examples, keys) if key not in self._scored]
        if todo:
            with torch.inference_mode():
                lp, pred = self._class_logprobs(todo)
            self._scored.update(zip(((ex.input, ex.output) for ex in todo), zip(lp.tolist(), pred)))
        return [self._scored[key] for key in keys]

    def logprobs(self, examples: Sequence[Example]) -> list[float]:
        """The gold class's log-probability of each example."""
        return [float(lp) for lp, _ in self._scores(examples)]

    def answers(self, examples: Sequence[Example]) -> list[str]:
        """The predicted class of each example."""
        return [self.verbalizer.name_of(p) for _, p in self._scores(examples)]
