"""Cloze templates and verbalizers, in AutoPrompt's notation (Shin et al. 2020).

A template is text with slots:

- ``[T]``: a trigger token, searched by AutoPrompt (shared by every example);
- ``[P]`` (also ``[Y]``): the prediction slot, where the model's prediction is read;
- ``[X]``, ``{input}`` or ``{sentence}``: the example's input;
- ``{name}``: a field of a two-input task whose input is a JSON object, e.g.
  ``{premise} [P] [T] [T] {hypothesis}`` for ``{"premise": "...", "hypothesis": "..."}``.

Examples: ``{sentence} [T] [T] [T] [P] .`` (sentiment), ``[X] [T] [T] [T] [T] [T] [P] .``
(fact retrieval, the object is the label), ``{sentence} It was [P] .`` (a manual template,
no triggers). A masked LM predicts ``[P]`` as its mask token; a causal LM predicts the next
token after everything before ``[P]`` (so ``[P]`` must be the last slot; text after it is
ignored and the template is refused if a field or trigger follows it).

A verbalizer maps each class to label words, each a single token of the model (several per
class as in the paper, whose probabilities are summed). Without a verbalizer the gold output
itself is the label word and the prediction ranges over the whole vocabulary (fact retrieval,
P@1).

This module imports neither torch nor transformers.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from optimizer.errors import UsageError

__all__ = ["ClozeTemplate", "Segment", "default_template", "parse_label_words", "parse_template", "reads_cloze"]

_SLOT = re.compile(r"\[T\]|\[P\]|\[Y\]|\[X\]|\{[A-Za-z_][A-Za-z0-9_]*\}")
_WHOLE_INPUT = {"[X]", "{input}", "{sentence}"}


@dataclass(frozen=True)
class Segment:
    """One piece of a parsed template."""

    kind: str
    """``text`` (literal), ``field`` (input or a named field), ``trigger`` or ``predict``."""
    value: str = ""
    """The literal text, or the field name (``""`` for the whole input)."""
    space: bool = False
    """Whether whitespace precedes it in the template (matters for BPE tokenizers)."""


@dataclass(frozen=True)
class ClozeTemplate:
    """A parsed template."""

    text: str
    """The template as written."""
    segments: tuple[Segment, ...]
    """Its pieces, in order."""

    @property
    def n_triggers(self) -> int:
        """Number of ``[T]`` slots."""
        return sum(s.kind == "trigger" for s in self.segments)

    @property
    def fields(self) -> list[str]:
        """Named input fields (empty when the template uses the whole input)."""
        return [s.value for s in self.segments if s.kind == "field" and s.value]

    def field_values(self, text: str) -> dict[str, str]:
        """The values of an example's input for each field slot.

        Args:
            text: the example's input (a JSON object when the template names fields).

        Returns:
            ``{field: value}``, with ``""`` for the whole input.

        Raises:
            UsageError: a named field is missing or the input is not a JSON object.
        """
        named = self.fields
        if not named:
            return {"": text}
        try:
            data = json.loads(text)
        except json.JSONDecodeError:
            data = None
        if not isinstance(data, dict):
            raise UsageError(f"template {self.text!r} names fields {named}, so each example input must be a JSON "
                             f"object with those keys; got {text[:80]!r}")
        missing = [f for f in named if f not in data]
        if missing:
            raise UsageError(f"example input lacks field(s) {missing} named by template {self.text!r}: {text[:80]!r}")
        return {f: str(data[f]) for f in named}

    def with_triggers(self, tokens: list[str]) -> str:
        """The template text with its ``[T]`` slots filled by ``tokens`` (for display)."""
        if len(tokens) != self.n_triggers:
            raise ValueError(f"{len(tokens)} trigger tokens for {self.n_triggers} slots")
        it = iter(tokens)
        return _SLOT.sub(lambda m: next(it) if m.group(0) == "[T]" else m.group(0), self.text)

    def without_triggers(self) -> str:
        """The template text with every ``[T]`` slot removed."""
        return " ".join(_SLOT.sub(lambda m: "" if m.group(0) == "[T]" else m.group(0), self.text).split())


def parse_template(text: str) -> ClozeTemplate:
    """Parse a cloze template.

    Args:
        text: e.g. ``"{sentence} [T] [T] [T] [P] ."``; ``[Y]`` is read as ``[P]``.

    Returns:
        The parsed template.

    Raises:
        UsageError: no prediction slot, more than one, or no input slot.
    """
    segments: list[Segment] = []
    pos = 0
    for m in _SLOT.finditer(text):
        literal = text[pos : m.start()]
        if literal.strip():
            segments.append(Segment("text", literal.strip(), space=literal[:1].isspace()))
        space = bool(literal) and literal[-1].isspace()
        slot = m.group(0)
        if slot == "[T]":
            segments.append(Segment("trigger", space=space))
        elif slot in ("[P]", "[Y]"):
            segments.append(Segment("predict", space=space))
        else:
            segments.append(Segment("field", "" if slot in _WHOLE_INPUT else slot[1:-1], space=space))
        pos = m.end()
    tail = text[pos:]
    if tail.strip():
        segments.append(Segment("text", tail.strip(), space=tail[:1].isspace()))
    n_pred = sum(s.kind == "predict" for s in segments)
    if n_pred != 1:
        raise UsageError(f"template {text!r} has {n_pred} prediction slots; it needs exactly one [P] "
                         "(e.g. '{sentence} [T] [T] [T] [P] .')")
    fields = [s for s in segments if s.kind == "field"]
    if not fields:
        raise UsageError(f"template {text!r} has no input slot; add [X], {{sentence}} or {{input}} "
                         "(or named fields like {premise})")
    if any(f.value for f in fields) and any(not f.value for f in fields):
        raise UsageError(f"template {text!r} mixes the whole input ([X]/{{input}}) with named fields")
    return ClozeTemplate(text=text, segments=tuple(segments))


def reads_cloze(kind: str, labels: list[str] | None, instructions: list[str]) -> bool:
    """Whether a local model of ``kind`` reads a task through a cloze template rather than by generation: always on a
    masked LM; on a causal LM when the task is a classification (``labels``) whose human instructions are cloze
    templates (a ``[P]`` slot, as ``sst2``'s ``{sentence} It was [P] .``), so the manual template is its baseline.
    """
    return kind == "masked" or (bool(labels) and any("[P]" in text for text in instructions))


def default_template(n_triggers: int) -> str:
    """AutoPrompt's default template: the input, ``n_triggers`` trigger slots, the prediction, a period."""
    return " ".join(["[X]", *["[T]"] * n_triggers, "[P]", "."])


def parse_label_words(spec: str | dict[str, list[str]] | None) -> dict[str, list[str]] | None:
    """Parse a verbalizer: ``"positive=good,great;negative=bad,terrible"`` or a mapping.

    Args:
        spec: the verbalizer, or None (the gold output is its own label word).

    Returns:
        ``{class: [label words]}`` or None.

    Raises:
        UsageError: a malformed specification.
    """
    if spec is None:
        return None
    if isinstance(spec, dict):
        out = {str(k): [str(w) for w in (v if isinstance(v, (list, tuple)) else [v])] for k, v in spec.items()}
    else:
        out = {}
        for part in [p for p in re.split(r"[;\n]", spec) if p.strip()]:
            label, sep, words = part.partition("=")
            if not sep:
                label, sep, words = part.partition(":")
            if not sep or not label.strip() or not words.strip():
                raise UsageError(f"label words {spec!r}: expected CLASS=word[,word...] separated by ';', "
                                 "e.g. 'positive=good,great;negative=bad,terrible'")
            out[label.strip()] = [w.strip() for w in words.split(",") if w.strip()]
    if len(out) < 2 or any(not words for words in out.values()):
        raise UsageError(f"label words {spec!r}: need at least two classes, each with at least one word")
    return out
