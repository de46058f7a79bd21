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
from collections.abc import Sequence
from typing import Any

__all__ = ["MIN_PREFIX", "PrefixCache", "cache_kwarg", "common_prefix", "prefix_cache_enabled"]

MIN_PREFIX = 16
"""Shortest shared prefix worth a separate pass (tokens)."""


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


class PrefixCache:
    """Key/value caches of recent prefixes of one model.

    Args:
        size: prefixes kept (each holds layers x 2 x key/value heads x head size x tokens floats).
    """

    def __init__(self, size: int = 8) -> None:
        self.size = size
        self._kept: OrderedDict[tuple[int, ...], Any] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, model: Any, prefix: Sequence[int], rows: int) -> Any:
        """The cache of ``prefix`` repeated for ``rows`` batch rows (a new object; the kept one is not changed).

        Args:
            model: the transformers causal LM (called under the caller's lock and inference mode).
            prefix: the prefix token ids.
            rows: the batch size.
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
            out = model(input_ids=ids, use_cache=True)
            kept = out["cache"] if "cache" in out else out["past_key_values"]  # the name before transformers 5
            with self._lock:
                self.misses += 1
                self._kept[key] = kept
                while len(self._kept) > self.size:
                    self._kept.popitem(last=False)
        out = copy.deepcopy(kept)
        out.batch_repeat_interleave(rows)
        return out
