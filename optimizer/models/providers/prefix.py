"""Shared-prefix key/value caching for a local causal LM.

Every candidate prompt's requests share their beginning (the instruction and demonstrations) and differ only in
the last input. The key/value cache of that shared prefix is computed once, kept (least recently used first out),
and given to every batch that starts with it, so each request runs only its own tokens. Positions continue from
the prefix, padding sits between the prefix and each row's own tokens (masked out), so what the model computes is
what it computes without the cache, up to floating-point summation order.

``APO_PREFIX_CACHE=0`` turns it off (the path without it, for comparison).
"""

from __future__ import annotations

import copy
import os
import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["MIN_GROUP", "MIN_PREFIX", "PrefixCache", "cache_kwarg", "common_prefix", "prefix_cache_enabled",
           "prefix_groups"]

MIN_PREFIX = 16
"""Shortest shared prefix worth a separate pass (tokens)."""
MIN_GROUP = 4
"""Fewest rows that run as a group of their own from their shared prefix (fewer are batched with the rest)."""


def prefix_cache_enabled() -> bool:
    """Whether shared-prefix caching is on (``APO_PREFIX_CACHE`` unset or not ``0``)."""
    return os.environ.get("APO_PREFIX_CACHE", "1").strip() not in ("0", "false", "off", "no")


def cache_kwarg(model: Any) -> str:
    """The name under which ``model.forward`` takes a key/value cache (``cache``; ``past_key_values`` before
    transformers 5)."""
    import inspect

    return "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"


def common_prefix(rows: Sequence[Sequence[int]], *, keep: int = 1) -> int:
    """Length of the longest prefix every row shares, leaving at least ``keep`` tokens of each row after it."""
    if not rows:
        return 0
    limit = min(len(r) for r in rows) - keep
    first = rows[0]
    n = 0
    while n < limit and all(r[n] == first[n] for r in rows[1:]):
        n += 1
    return max(n, 0)


def prefix_groups(order: Sequence[int], rows: Sequence[Sequence[int]] | Mapping[int, Sequence[int]]) -> list[list[int]]:
    """``order`` split into groups of rows that share most of their tokens from the start, so that each group can
    run from one cached prefix; rows that share with no others are pooled in a last group.

    A racing rung scores many candidates on the same few examples: sorted by length alone, a batch mixes
    candidates and shares no prefix. Sorted by their tokens, a candidate's rows sit together; a group ends where
    the next row shares less than half of the group's first row (and at least :data:`MIN_PREFIX` tokens) with it.
    Groups of fewer than :data:`MIN_GROUP` rows are pooled. With prefix caching off, one group: ``order`` as given.

    Args:
        order: row indices.
        rows: each row's tokens, by index.

    Returns:
        Groups of indices, every index once.
    """
    if not prefix_cache_enabled():
        return [list(order)]
    groups: list[list[int]] = []
    for i in sorted(order, key=lambda i: list(rows[i])):
        first = rows[groups[-1][0]] if groups else ()
        if groups and common_prefix([first, rows[i]], keep=0) >= max(MIN_PREFIX, len(first) // 2):
            groups[-1].append(i)
        else:
            groups.append([i])
    kept = [g for g in groups if len(g) >= MIN_GROUP]
    pooled = [i for g in groups if len(g) < MIN_GROUP for i in g]
    return kept + ([pooled] if pooled else [])


class PrefixCache:
    """Key/value caches of recent prefixes of one model.

    Args:
        size: prefixes kept (each holds layers x 2 x key/value heads x head size x tokens floats). A racing rung
            of the default job scores 13 prompts, first by generation and then by log-probability; fewer than 13
            kept would evict every prefix before its second use.
    """

    def __init__(self, size: int = 16) -> None:
        self.size = size
        self._kept: OrderedDict[tuple[int, ...], Any] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, model: Any, prefix: Sequence[int], rows: int, keep_logits: bool = False) -> Any:
        """The cache of ``prefix`` repeated for ``rows`` batch rows (a new object; the kept one is not changed).

        Args:
            model: the transformers causal LM (called under the caller's lock and inference mode).
            prefix: the prefix token ids.
            rows: the batch size.
            keep_logits: the model takes ``logits_to_keep``: the prefix pass then skips the output layer on all but
                its last position (nothing reads its logits).
        """
        import torch

        key = tuple(prefix)
        with self._lock:
            kept = self._kept.get(key)
            if kept is not None:
                self._kept.move_to_end(key)
                self.hits += 1
        if kept is None:
            ids = torch.tensor([list(prefix)], dtype=torch.long, device=model.device)
            out = model(input_ids=ids, use_cache=True, **({"logits_to_keep": 1} if keep_logits else {}))
            kept = out["cache"] if "cache" in out else out["past_key_values"]  # the name before transformers 5
            with self._lock:
                self.misses += 1
                self._kept[key] = kept
                while len(self._kept) > self.size:
                    self._kept.popitem(last=False)
        out = copy.deepcopy(kept)
        out.batch_repeat_interleave(rows)
        return out
