"""Scoring cloze prompts (AutoPrompt's triggers and manual templates) with a white-box model."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from optimizer.errors import UsageError
from optimizer.run.scoring import ScoreRecord
from optimizer.search.autoprompt.cloze_model import ClozeModel, Verbalizer
from optimizer.search.autoprompt.tokens import with_trigger
from optimizer.tasks.cloze import ClozeTemplate, parse_template
from optimizer.types import Example

__all__ = ["ClozeScorer"]


class ClozeScorer:
    """Scores cloze prompts; the :class:`~optimizer.run.scoring.PromptScorer` of AutoPrompt runs.

    A prompt's text is either a registered trigger prompt (its ids are kept, never re-tokenized),
    a template without trigger slots (a manual template such as ``{sentence} It was [P] .``), or
    ``""`` (the search template with its trigger slots removed). Accuracy is 1 when the class
    with the highest summed label-word probability is the gold one (open vocabulary: when the
    top non-special token is the gold object, P@1); the log-probability is the gold class's.
    One pass gives both, so the scorer is ``joint``.

    Args:
        model: the cloze model.
        template: the search template.
        verbalizer: the label words.
    """

    joint = True

    def __init__(self, model: ClozeModel, template: ClozeTemplate, verbalizer: Verbalizer) -> None:
        self.model = model
        self.template = template
        self.verbalizer = verbalizer
        self.prompts: dict[str, tuple[ClozeTemplate, tuple[int, ...]]] = {}

    def render(self, trigger: Sequence[int], is_taken: Callable[[str], bool] = lambda text: False) -> str:
        """A unique display text for a trigger in the search template, registered for scoring.

        Args:
            trigger: the trigger ids.
            is_taken: whether a text is already another candidate's (after normalisation).

        Returns:
            The text: the tokens' texts, else their vocabulary forms, else texts with ids.
        """
        trigger = tuple(trigger)
        tok = self.model.tokenizer
        forms = ([self.model.token_text(t) for t in trigger], tok.convert_ids_to_tokens(list(trigger)),
                 [f"{self.model.token_text(t)}<{t}>" for t in trigger])
        for words in forms:
            text = self.template.with_triggers(list(words))
            known = self.prompts.get(text)
            if known is not None and known[1] == trigger:
                return text
            if known is None and not is_taken(text):
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

    def known_gold(self, examples: Sequence[Example]) -> list[int]:
        """Gold class (or token) of each example, for examples that all have one (the search's training examples).

        Raises:
            UsageError: an example's output has no label token.
        """
        gold = self.gold(examples)
        known = [g for g in gold if g is not None]
        if len(known) < len(gold):
            bad = next(ex.output for ex, g in zip(examples, gold) if g is None)
            raise UsageError(f"gold output {bad!r} is not a label of the verbalizer (or not a single token of this "
                             "model); training examples need one")
        return known

    def losses(self, examples: Sequence[Example], triggers: Sequence[Sequence[int]]) -> list[float]:
        """Mean label loss of each trigger (search template) over ``examples`` (no gradient)."""
        gold = self.known_gold(examples)
        base = [self.model.encode(self.template, ex.input, triggers[0]) for ex in examples]
        encs = [with_trigger(e, t) for t in triggers for e in base]
        lp, _ = self.verbalizer.score(self.model.logprobs(encs), [g for _ in triggers for g in gold])
        return (-lp.view(len(triggers), len(examples)).mean(-1)).tolist()

    def compute(self, pairs: Sequence[tuple[str, Example]], kinds: frozenset[str]) -> list[ScoreRecord]:
        """Accuracy and gold log-probability of each (prompt, example) in one pass per prompt."""
        out: list[ScoreRecord] = []
        for text in dict.fromkeys(t for t, _ in pairs):
            chunk = [ex for t, ex in pairs if t == text]
            template, trigger = self.spec(text)
            gold = self.gold(chunk)
            usable = {i: g for i, g in enumerate(gold) if g is not None}
            results: dict[int, tuple[float, int]] = {}
            if usable:
                encs = [self.model.encode(template, chunk[i].input, trigger) for i in usable]
                lp, pred = self.verbalizer.score(self.model.logprobs(encs), list(usable.values()))
                results = {i: (float(v), p) for i, v, p in zip(usable, lp.tolist(), pred)}
            for i, ex in enumerate(chunk):
                if i in results:
                    value, p = results[i]
                    out.append(ScoreRecord(acc=float(p == gold[i]), lp=value, output=self.verbalizer.name_of(p)))
                else:
                    out.append(ScoreRecord(acc=0.0, error=f"gold output {ex.output!r} is not a label of the "
                                                          "verbalizer (or not a single token of this model)"))
        return out
