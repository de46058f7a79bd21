"""Demonstrations chosen per input: the k training examples whose inputs are most like it.

In the manner of KATE (Liu et al., 2021, "What Makes Good In-Context Examples for GPT-3?") and DSPy's
KNNFewShot: a prompt with *nearest* demonstrations shows, for each input, the k training examples
whose inputs are closest to it, the closest last (next to the input). Closeness is the cosine of
TF-IDF vectors of character 2- to 4-grams (scikit-learn's ``TfidfVectorizer``), which needs no
embedding model, works for any target (API models included) and any language, and is
deterministic. Training examples with the same input as the query are left out, so an example
never retrieves itself (scoring on the train split stays honest) and a deployed prompt, which
does not know the answer, chooses exactly as the scored one did.

A prompt's demonstrations name this choice by one pseudo-id, ``@nearest:K`` (see
:func:`nearest_demos` and :func:`nearest_k`), so journals, events and lineage carry it like any
other demonstration set.
"""

from __future__ import annotations

from collections.abc import Sequence

from optimizer.types import Example

__all__ = ["NEAREST", "VECTORIZER", "NearestExamples", "nearest_demos", "nearest_k", "nearest_phrase"]

NEAREST = "@nearest:"
"""Prefix of the pseudo demonstration id that stands for the K nearest training examples of each input."""
VECTORIZER = {"analyzer": "char_wb", "ngram_range": (2, 4), "sublinear_tf": True, "lowercase": True}
"""The ``TfidfVectorizer`` settings of the retriever (an exported prompt rebuilds it from these)."""


def nearest_demos(k: int) -> tuple[str, ...]:
    """The demonstration ids of a prompt that shows each input its ``k`` nearest training examples."""
    if k < 1:
        raise ValueError(f"nearest demonstrations need k of at least 1, got {k}")
    return (f"{NEAREST}{k}",)


def nearest_k(demos: Sequence[str] | None) -> int | None:
    """K when ``demos`` stands for the K nearest training examples of each input, else None.

    Args:
        demos: a prompt's demonstration ids (None: the run's fixed demonstrations).

    Returns:
        K, or None for fixed demonstrations.
    """
    if demos is None or len(demos) != 1 or not demos[0].startswith(NEAREST):
        return None
    k = demos[0][len(NEAREST):]
    return int(k) if k.isdigit() and int(k) > 0 else None


class NearestExamples:
    """Retrieves the training examples closest to an input.

    Args:
        train: the pool (the task's train split).
    """

    def __init__(self, train: Sequence[Example]) -> None:
        from sklearn.feature_extraction.text import TfidfVectorizer

        self.train = list(train)
        self._vectorizer = TfidfVectorizer(**VECTORIZER)
        try:
            self._matrix = self._vectorizer.fit_transform([ex.input for ex in self.train])
        except ValueError:  # no character n-gram in any input (all empty): every example is equally near
            self._matrix = None

    def select(self, example: Example, k: int) -> list[Example]:
        """The ``k`` training examples nearest to ``example``'s input, the nearest last; ties keep train order.

        No training example with the same input is among them (an example never sees itself, and a prompt
        chooses the same way whether or not the answer is known).
        """
        if self._matrix is not None:
            sims = (self._matrix @ self._vectorizer.transform([example.input]).T).toarray().ravel()
        else:
            sims = [0.0] * len(self.train)
        pool = [i for i, ex in enumerate(self.train) if ex.input != example.input]
        chosen = sorted(pool, key=lambda i: (-float(sims[i]), i))[:k]
        return [self.train[i] for i in reversed(chosen)]


def nearest_phrase(k: int) -> str:
    """How a prompt with nearest demonstrations is described in reports.

    Args:
        k: how many nearest training examples each input is shown.

    Returns:
        The phrase, such as "each input's 8 nearest training examples, the nearest last".
    """
    return f"each input's {k} nearest training examples, the nearest last"
