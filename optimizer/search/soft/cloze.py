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
        logits = self.model(input_ids=ids, attention_mask=mask).logits[:, -ids.shape[1]:]  # virtual tokens first
        rows = torch.arange(len(examples), device=ids.device)
        return self.verbalizer.score(torch.log_softmax(logits[rows, predict].float(), dim=-1), gold)  # type: ignore

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
        return float(loss.detach())

    def logprobs(self, examples: Sequence[Example]) -> list[float]:
        """The gold class's log-probability of each example."""
        import torch

        with torch.inference_mode():
            lp, _ = self._class_logprobs(examples)
        return [float(x) for x in lp]

    def answers(self, examples: Sequence[Example]) -> list[str]:
        """The predicted class of each example."""
        import torch

        with torch.inference_mode():
            _, pred = self._class_logprobs(examples)
        return [self.verbalizer.name_of(p) for p in pred]
