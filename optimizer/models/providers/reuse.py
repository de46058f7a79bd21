"""What a local model's log-probability pass leaves for the greedy answer to the same prompt.

Scoring asks a local model two things of each prompt and example, the gold answer's log-probability first, then
the model's own greedy answer. The first pass has already run the whole prompt and the gold answer, so:

- where every gold token was the model's greedy choice and the token after the gold answer ends it (a stop string,
  an end token), the greedy answer *is* the gold answer: :class:`GreedyAnswers` keeps it and
  :func:`known_generation` returns it as generation would have, without a forward pass;
- otherwise :class:`RowCache` keeps the keys and values of the prompt's own tokens, and the answer's pass runs only
  the prompt's last token from them instead of every token after the shared prefix.

Both are what the model computes without them, up to floating-point summation order. ``APO_LOGPROB_REUSE=0`` turns
them off (the path without them, for comparison), as does ``APO_PREFIX_CACHE=0`` with the prefix cache.
"""

from __future__ import annotations

import hashlib
import os
import threading
from array import array
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any

from optimizer.models.providers.prefix import PrefixCache, _set_tensors, _tensors
from optimizer.models.stops import cut_at_stop, first_stop
from optimizer.types import GenerateRequest, Generation

__all__ = ["GreedyAnswers", "RowCache", "known_answers", "known_generation", "reuse_enabled", "row_slices"]


def reuse_enabled() -> bool:
    """Whether a model keeps what its log-probability passes leave (``APO_LOGPROB_REUSE`` unset or not ``0``)."""
    return os.environ.get("APO_LOGPROB_REUSE", "1").strip() not in ("0", "false", "off", "no")


def _digest(tokens: Sequence[int]) -> bytes:
    return hashlib.blake2b(array("q", tokens).tobytes(), digest_size=16).digest()


class GreedyAnswers:
    """Prompts whose greedy answer a log-probability pass found: the gold tokens, each the greedy choice, and the
    greedy token after them.

    Args:
        size: prompts kept (least recently used out first); an entry is a digest and a few tokens.
    """

    def __init__(self, size: int = 65_536) -> None:
        self.size = size
        self._kept: OrderedDict[bytes, tuple[tuple[int, ...], int]] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0

    def put(self, prompt: Sequence[int], gold: Sequence[int], after: int) -> None:
        """Keep that greedy decoding of ``prompt`` gives ``gold`` and then ``after``."""
        with self._lock:
            self._kept[_digest(prompt)] = (tuple(gold), after)
            while len(self._kept) > self.size:
                self._kept.popitem(last=False)

    def get(self, prompt: Sequence[int]) -> tuple[tuple[int, ...], int] | None:
        """The kept ``(gold tokens, token after)`` of a prompt, or None."""
        key = _digest(prompt)
        with self._lock:
            found = self._kept.get(key)
            if found is not None:
                self._kept.move_to_end(key)
        return found


def known_generation(tokenizer: Any, eos_ids: Sequence[int], found: tuple[tuple[int, ...], int],
                     stops: Sequence[str], max_tokens: int, prompt_tokens: int) -> Generation | None:
    """The greedy answer a :class:`GreedyAnswers` entry implies, exactly as greedy generation returns it, or None
    when generation could end elsewhere (the answer needs more than ``max_tokens``, a stop string or an end token
    would come inside it, or nothing ends it after it)."""
    gold, after = list(found[0]), found[1]
    if len(gold) + 1 > max_tokens or any(t in eos_ids for t in gold):
        return None
    if any(first_stop(tokenizer.decode(gold[:k], skip_special_tokens=True), stops) is not None
           for k in range(1, len(gold) + 1)):
        return None
    if after in eos_ids:
        text = tokenizer.decode(gold, skip_special_tokens=True)
    else:
        text = tokenizer.decode(gold + [after], skip_special_tokens=True)
        if first_stop(text, stops) is None:
            return None
    return Generation(text=cut_at_stop(text, tuple(stops)), prompt_tokens=prompt_tokens,
                      completion_tokens=len(gold) + 1)


def known_answers(answers: GreedyAnswers, tokenizer: Any, eos_ids: Sequence[int], prompts: Mapping[int, Sequence[int]],
                  requests: Sequence[GenerateRequest], max_tokens: int) -> dict[int, Generation]:
    """The greedy answers of the ``prompts`` (token ids by request index) that ``answers`` implies, by index (see
    :func:`known_generation`)."""
    known: dict[int, Generation] = {}
    for i, prompt in prompts.items():
        found = answers.get(prompt)
        if found is not None:
            gen = known_generation(tokenizer, eos_ids, found, [s for s in requests[i].stop if s], max_tokens,
                                   len(prompt))
            if gen is not None:
                known[i] = gen
    answers.hits += len(known)
    return known


class RowCache:
    """Key/value caches of whole prompts, kept from log-probability passes for the greedy answer to the same prompt.

    Scoring asks a local model both for the gold answer's log-probability and for its own answer under each prompt
    and example, the log-probability first. That pass has run the whole prompt; the answer's pass then runs only the
    prompt's last token from here instead of every token after the shared prefix. An entry keeps the keys and values
    of a row's own tokens (its shared prefix stays in :class:`PrefixCache`, recomputed there if it was dropped),
    keyed by a digest of the prompt's tokens but the last; entries leave least recently used first.

    Args:
        tokens: own tokens kept in all (each holds layers x 2 x key/value heads x head size floats: 46 KB for
            SmolLM2-135M, so 4,096 tokens are about 190 MB); a scoring batch of 64 examples fits.
    """

    def __init__(self, tokens: int = 4096) -> None:
        self.tokens = tokens
        self._kept: OrderedDict[bytes, tuple[int, int, list[tuple[Any, Any]]]] = OrderedDict()
        self._size = 0
        self._lock = threading.Lock()
        self.hits = 0

    def put(self, context: Sequence[int], shared: int, layers: list[tuple[Any, Any]]) -> None:
        """Keep a prompt's keys and values.

        Args:
            context: the prompt's tokens but the last.
            shared: how many of them are the prefix (in :class:`PrefixCache`); ``layers`` holds the rest.
            layers: per layer, the keys and values of ``context[shared:]`` (1 row).
        """
        n = len(context) - shared
        if n <= 0 or n > self.tokens:
            return
        key = _digest(context)
        with self._lock:
            old = self._kept.pop(key, None)
            self._size += n - (old[1] if old else 0)
            self._kept[key] = (shared, n, layers)
            while self._size > self.tokens:
                self._size -= self._kept.popitem(last=False)[1][1]

    def has(self, context: Sequence[int]) -> bool:
        """Whether a prompt's tokens but the last are kept."""
        with self._lock:
            return _digest(context) in self._kept

    def cache(self, model: Any, prefixes: PrefixCache, context: Sequence[int], rows: int,
              keep_logits: bool = False) -> Any | None:
        """The key/value cache of ``context`` (kept by :meth:`put`) for ``rows`` batch rows, or None when it is not
        kept: its prefix from ``prefixes``, then its own keys and values."""
        import torch

        key = _digest(context)
        with self._lock:
            found = self._kept.get(key)
            if found is None:
                return None
            self._kept.move_to_end(key)
            self.hits += 1
        shared, _, layers = found
        cache = prefixes.get(model, context[:shared], 1, keep_logits)
        for layer, (keys, values) in enumerate(layers):
            head_keys, head_values = _tensors(cache, layer)
            _set_tensors(cache, layer, torch.cat([head_keys, keys], 2), torch.cat([head_values, values], 2))
        if rows > 1:
            cache.batch_repeat_interleave(rows)
        return cache


def row_slices(cache: Any, row: int, start: int, stop: int) -> list[tuple[Any, Any]]:
    """Per layer, copies of the keys and values of one batch row at positions ``start`` to ``stop``."""
    n_layers = len(cache.layers) if hasattr(cache, "layers") else len(cache.key_cache)
    return [tuple(t[row : row + 1, :, start:stop].clone() for t in _tensors(cache, layer))
            for layer in range(n_layers)]
