"""Scoring cloze prompts (AutoPrompt's triggers and manual templates) with a white-box model."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import asdict
from typing import TYPE_CHECKING

from optimizer.errors import UsageError
from optimizer.run.scoring import ScoreRecord
from optimizer.search.autoprompt.cloze_model import ClozeModel, Verbalizer
from optimizer.search.autoprompt.tokens import with_trigger
from optimizer.tasks.cloze import ClozeTemplate, parse_template
from optimizer.types import Example

if TYPE_CHECKING:
    from optimizer.models.client import ModelClient

__all__ = ["ClozeScorer"]


class ClozeScorer:
    """Scores cloze prompts; the :class:`~optimizer.run.scoring.PromptScorer` of AutoPrompt runs.

    A prompt's text is either a registered trigger prompt (its ids are kept, never re-tokenized),
    a template without trigger slots (a manual template such as ``{sentence} It was [P] .``), or
    ``""`` (the search template with its trigger slots removed). Accuracy is 1 when the class
    with the highest summed label-word probability is the gold one (open vocabulary: when the
    top non-special token is the gold object, P@1); the log-probability is the gold class's.
    One pass gives both, so the scorer is ``joint``.

    Scores go through the target's response cache like its generations: a prompt already scored on an example
    (the same model, template, trigger ids, label words and example) is read back, not run again, and counts as
    a cache hit rather than a call.

    Args:
        model: the cloze model.
        template: the search template.
        verbalizer: the label words.
        client: the target's client (its response cache, model id and usage), or None to cache nothing.
    """

    joint = True

    def __init__(self, model: ClozeModel, template: ClozeTemplate, verbalizer: Verbalizer,
                 client: ModelClient | None = None) -> None:
        self.model = model
        self.template = template
        self.verbalizer = verbalizer
        self.client = client
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

    def _keys(self, template: ClozeTemplate, trigger: tuple[int, ...], examples: Sequence[Example]) -> list[str]:
        """The response-cache key of each example under one template and trigger."""
        model, verb = self.model, self.verbalizer
        head = {"model": self.client.name if self.client else "", "kind": "cloze", "lm": model.kind,
                "max_length": model.max_length, "template": template.text, "trigger": list(trigger),
                "classes": verb.classes, "class_ids": verb.class_ids, "normalize": verb.normalize}
        return [hashlib.sha256(json.dumps({**head, "input": ex.input, "output": ex.output}, sort_keys=True,
                                          ensure_ascii=False).encode()).hexdigest() for ex in examples]

    def compute(self, pairs: Sequence[tuple[str, Example]], kinds: frozenset[str]) -> list[ScoreRecord]:
        """Accuracy and gold log-probability of each (prompt, example) in one pass per prompt (cached ones read
        back from the response cache)."""
        cache = self.client.cache if self.client is not None else None
        out: list[ScoreRecord] = []
        for text in dict.fromkeys(t for t, _ in pairs):
            chunk = [ex for t, ex in pairs if t == text]
            template, trigger = self.spec(text)
            keys = self._keys(template, trigger, chunk) if cache is not None else []
            found = cache.get_many(keys) if cache is not None else {}
            todo = [ex for i, ex in enumerate(chunk) if not keys or keys[i] not in found]
            fresh = iter(self._score(template, trigger, todo))
            records = [ScoreRecord(**found[keys[i]]) if keys and keys[i] in found else next(fresh)
                       for i in range(len(chunk))]
            if cache is not None and self.client is not None:
                self.client.ledger.role(self.client.role).cache_hits += len(chunk) - len(todo)
                cache.put_many([(keys[i], self.client.name, "cloze", asdict(r)) for i, r in enumerate(records)
                                if keys[i] not in found and r.error is None])
            out += records
        return out

    def _score(self, template: ClozeTemplate, trigger: tuple[int, ...], chunk: list[Example]) -> list[ScoreRecord]:
        """Run the model on ``chunk`` under one template and trigger."""
        out: list[ScoreRecord] = []
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
