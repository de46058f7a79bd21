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

from optimizer.models.providers.decoding import output_cache

__all__ = ["MIN_GROUP", "MIN_PREFIX", "PrefixCache", "cache_kwarg", "chunks", "common_prefix", "length_runs",
           "plan_batches", "prefix_cache_enabled", "prefix_groups", "stack_caches", "stackable"]

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


def chunks(
    order: Sequence[int], lengths: Mapping[int, int] | Sequence[int], batch_size: int, batch_tokens: int
) -> list[list[int]]:
    """Split ``order`` into runs of at most ``batch_size`` whose rows x longest length fits ``batch_tokens``."""
    batches: list[list[int]] = []
    current: list[int] = []
    longest = 0
    for i in order:
        grown = max(longest, lengths[i])
        if current and (len(current) >= batch_size or grown * (len(current) + 1) > batch_tokens):
            batches.append(current)
            current, grown = [], lengths[i]
        current.append(i)
        longest = grown
    if current:
        batches.append(current)
    return batches


def length_runs(order: Sequence[int], sizes: Mapping[int, int]) -> list[list[int]]:
    """``order`` (sorted by ``sizes``) split where a row is more than twice as long as its run's first row plus 8:
    runs whose rows pad to about the same length (padding costs as much compute as a real token)."""
    runs: list[list[int]] = []
    for i in order:
        if not runs or sizes[i] > 2 * sizes[runs[-1][0]] + 8:
            runs.append([])
        runs[-1].append(i)
    return runs


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


def stackable(cache: Any) -> bool:
    """Whether caches like ``cache`` can be stacked by :func:`stack_caches`: a plain dynamic cache whose every
    layer keeps all positions (a sliding-window layer drops old ones, so its prefixes cannot be padded in line)."""
    if type(cache).__name__ != "DynamicCache":
        return False
    layers = getattr(cache, "layers", None)
    if layers is None:  # transformers 4: one key and one value tensor per layer, all full length
        return hasattr(cache, "key_cache")
    return all(type(layer).__name__ == "DynamicLayer" for layer in layers)


def _tensors(cache: Any, layer: int) -> tuple[Any, Any]:
    if hasattr(cache, "layers"):
        return cache.layers[layer].keys, cache.layers[layer].values
    return cache.key_cache[layer], cache.value_cache[layer]


def _set_tensors(cache: Any, layer: int, keys: Any, values: Any) -> None:
    if hasattr(cache, "layers"):
        cache.layers[layer].keys, cache.layers[layer].values = keys, values
    else:
        cache.key_cache[layer], cache.value_cache[layer] = keys, values


def stack_caches(parts: Sequence[Any | None], lengths: Sequence[int], rows: Sequence[int]) -> Any:
    """One key/value cache for a batch whose rows continue different prefixes.

    Segment ``j`` of the batch is ``rows[j]`` rows continuing a prefix of ``lengths[j]`` tokens whose cache is
    ``parts[j]`` (already repeated for its rows; None for rows with no cached prefix, ``lengths[j]`` 0). Each part is
    left-padded with zeros to the longest prefix and the parts are concatenated over the batch. The caller masks
    the padding and numbers positions from the mask, so each row sees exactly its own prefix, at the positions its
    cache was computed at.

    Args:
        parts: each segment's cache (:func:`stackable` ones), or None; at least one is a cache.
        lengths: each segment's prefix length (the cache's sequence length; 0 for None).
        rows: each segment's rows.

    Returns:
        A cache of ``sum(rows)`` rows and ``max(lengths)`` positions (one of ``parts``, changed in place).
    """
    import torch
    import torch.nn.functional as F  # noqa: N812

    ref = next(p for p in parts if p is not None)
    width = max(lengths)
    n_layers = len(ref.layers) if hasattr(ref, "layers") else len(ref.key_cache)
    for layer in range(n_layers):
        stacked = []
        for which in (0, 1):
            like = _tensors(ref, layer)[which]
            stacked.append(torch.cat([
                like.new_zeros((n, like.shape[1], width, like.shape[3])) if part is None
                else F.pad(_tensors(part, layer)[which], (0, 0, width - length, 0))
                for part, length, n in zip(parts, lengths, rows)
            ]))
        _set_tensors(ref, layer, *stacked)
    return ref


def plan_batches(
    order: Sequence[int], rows: Mapping[int, Sequence[int]], sizes: Mapping[int, int], *, kept: PrefixCache,
    stack: bool, batch_rows: int, stack_rows: int, batch_tokens: int, limits: Mapping[int, int] | None = None
) -> list[tuple[list[int], dict[int, int]]]:
    """Batches of ``order``, with each row's cached-prefix length (0: none).

    A row's prefix is its group's common prefix (:func:`prefix_groups`), or for a row that shares none with the
    others in this call, the longest prefix ``kept`` holds for it (its prompt's other rows came in an earlier call);
    cut to ``limits[i]`` tokens, and none when under :data:`MIN_PREFIX`. With ``stack`` (the model's caches stack,
    :func:`stack_caches`), a batch holds up to ``stack_rows`` rows of any prefixes, rows of about the same length
    after their prefix together, sorted by prefix; otherwise each batch holds rows of one prefix, up to ``batch_rows``.

    Args:
        order: row indices.
        rows: each row's tokens (the part a prefix may cover).
        sizes: each row's length as padded in a batch (its tokens and what is generated after them).
        kept: the prefix cache.
        stack: whether rows of different prefixes may share a batch.
        batch_rows: rows per batch of one prefix.
        stack_rows: rows per stacked batch.
        batch_tokens: bound on a batch's rows times its longest size (twice this for a stacked batch).
        limits: the longest prefix each row may have (log-probabilities: no scored token in it).
    """
    enabled = prefix_cache_enabled()
    pre: dict[int, int] = {}
    for group in prefix_groups(order, rows):
        n = common_prefix([rows[i] for i in group]) if len(group) > 1 and enabled else 0
        for i in group:
            m = n if n >= MIN_PREFIX or not enabled else kept.longest(rows[i])
            m = min(m, limits[i]) if limits is not None else m
            pre[i] = m if m >= MIN_PREFIX else 0
    if enabled and stack and any(pre.values()):
        own = {i: sizes[i] - pre[i] for i in order}
        return [(sorted(b, key=lambda i: list(rows[i][: pre[i]])), pre)
                for run in length_runs(sorted(order, key=own.__getitem__), own)
                for b in chunks(run, sizes, stack_rows, 2 * batch_tokens)]
    keyed: dict[tuple[int, ...], list[int]] = {}
    for i in sorted(order, key=sizes.__getitem__):
        keyed.setdefault(tuple(rows[i][: pre[i]]), []).append(i)
    return [(b, pre) for group in keyed.values() for b in chunks(group, sizes, batch_rows, batch_tokens)]


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

    def longest(self, row: Sequence[int]) -> int:
        """Length of the longest kept prefix that ``row`` starts with and goes beyond (0: none). A row whose
        prompt's other rows came in an earlier call continues its prompt's prefix from here."""
        with self._lock:
            keys = list(self._kept)
        return max((len(k) for k in keys if len(k) < len(row) and tuple(row[: len(k)]) == k), default=0)

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
            kept = output_cache(out)
            with self._lock:
                self.misses += 1
                self._kept[key] = kept
                while len(self._kept) > self.size:
                    self._kept.popitem(last=False)
        out = copy.deepcopy(kept)
        out.batch_repeat_interleave(rows)
        return out

