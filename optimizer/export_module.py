"""``apo export --format python``: a run's shipped prompt as a self-contained Python module."""

from __future__ import annotations

import pprint
from typing import Any

from optimizer.tasks.nearest import VECTORIZER

__all__ = ["DEMOS_PLACEHOLDER", "PLACEHOLDER", "python_module"]

PLACEHOLDER = "{input}"
"""Where the input goes in an exported prompt."""
DEMOS_PLACEHOLDER = "{demonstrations}"
"""Where each input's nearest demonstrations go, in a prompt that has them."""

_NEAREST_CODE = '''
POOL = {pool}
"""The demonstrations each input's nearest ones are chosen from (the task's training examples)."""

NEAREST = {k}
"""How many demonstrations an input is shown."""

VECTORIZER = {vectorizer}
"""scikit-learn TfidfVectorizer settings: closeness is the cosine of these vectors of the inputs."""


_FITTED = []
"""The vectorizer and POOL's vectors, fitted on the first call."""


def demonstrations(input: str) -> str:
    """The NEAREST examples of POOL whose inputs are most like ``input`` (none with the same input; ties keep
    POOL's order), as Input/Output blocks, the nearest last."""
    if not _FITTED:
        from sklearn.feature_extraction.text import TfidfVectorizer

        vectorizer = TfidfVectorizer(**VECTORIZER)
        try:
            _FITTED[:] = [vectorizer, vectorizer.fit_transform([d["input"] for d in POOL])]
        except ValueError:  # no character n-gram in any input: every example is equally near
            _FITTED[:] = [None, None]
    vectorizer, matrix = _FITTED
    sims = [0.0] * len(POOL) if matrix is None else (matrix @ vectorizer.transform([input]).T).toarray().ravel()
    pool = [i for i, d in enumerate(POOL) if d["input"] != input]
    chosen = sorted(pool, key=lambda i: (-float(sims[i]), i))[:NEAREST]
    return "".join(f"Input: {{POOL[i]['input']}}\\nOutput: {{POOL[i]['output']}}\\n\\n" for i in reversed(chosen))
'''


def python_module(exported: Any) -> str:
    """A self-contained Python module defining ``PROMPT`` (a ``str.format`` template), ``render(input)``,
    ``messages(input)``, ``STYLE``, ``MANIFEST`` and ``NOTES``; for a prompt that shows each input its nearest
    demonstrations also ``POOL``, ``NEAREST`` and ``demonstrations(input)`` (which needs scikit-learn).

    Args:
        exported: the :class:`~optimizer.export.ExportedPrompt`.
    """
    def escape(text: str) -> str:
        return text.replace("{", "{{").replace("}", "}}")

    head, _, tail = exported.template.rpartition(PLACEHOLDER)
    fields = "{input}"
    if exported.nearest is not None:
        before, _, after = head.rpartition(DEMOS_PLACEHOLDER)
        head = escape(before) + DEMOS_PLACEHOLDER + escape(after)
        fields = "{demonstrations} and {input}"
    else:
        head = escape(head)
    pieces = "\n".join(f"    {line!r}" for line in (head + PLACEHOLDER + escape(tail)).splitlines(keepends=True))
    manifest = pprint.pformat(exported.manifest.model_dump(), sort_dicts=False, width=100)
    notes = pprint.pformat(exported.notes, width=100)
    nearest = "" if exported.nearest is None else _NEAREST_CODE.format(
        pool=pprint.pformat(exported.demonstrations, sort_dicts=False, width=100), k=exported.nearest,
        vectorizer=pprint.pformat(VECTORIZER, sort_dicts=False))
    render = ("PROMPT.format(input=input)" if exported.nearest is None
              else "PROMPT.format(input=input, demonstrations=demonstrations(input))")
    return f'''"""A prompt shipped by an apo run, exactly as its target model was sent it (see MANIFEST).

render(input) returns the prompt with ``input`` as the last input; messages(input) returns it as one
chat user message, as apo's chat execution style sends it. STYLE says which of the two the run used.
"""

STYLE = {exported.style!r}

PROMPT = (
{pieces}
)
"""The prompt as a str.format template: its fields are {fields}; literal braces are doubled."""

MANIFEST = {manifest}

NOTES = {notes}
{nearest}

def render(input: str) -> str:
    """The prompt for ``input``."""
    return {render}


def messages(input: str) -> list:
    """The prompt as OpenAI-style chat messages."""
    return [{{"role": "user", "content": render(input)}}]
'''
