"""Causal cloze passes that run each example's text before the trigger slots once for all its triggers.

AutoPrompt compares candidate triggers on the same examples (ten candidates and the current trigger on each
example of a batch), and racing scores several triggers on the same dev examples. On a causal LM whose template
puts the input before the trigger slots (``{sentence} [T] [T] [T] [P] .``), those rows share everything before
the first slot: its key/value cache is computed once per example, and each row runs only its trigger and what
follows up to the prediction slot. Positions continue from the shared text and padding is masked, so the
log-probabilities are those of the full pass up to floating-point summation order. ``APO_PREFIX_CACHE=0`` turns
it off, as for the local target's shared-prefix cache.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from optimizer.models.providers.decoding import output_cache
from optimizer.models.providers.prefix import cache_kwarg, prefix_cache_enabled

if TYPE_CHECKING:
    import torch

__all__ = ["MIN_SHARED_ROWS", "splits_at_trigger", "shared_gradient", "shared_groups", "shared_logprobs"]

ClozeModel = Any
"""A causal :class:`~optimizer.search.autoprompt.cloze_model.ClozeModel` (which calls this module)."""


class Encoded(Protocol):
    """A row as :class:`~optimizer.search.autoprompt.cloze_model.Encoded` holds it."""

    @property
    def ids(self) -> tuple[int, ...]: ...
    @property
    def triggers(self) -> tuple[int, ...]: ...
    @property
    def predict(self) -> int: ...


MIN_SHARED_ROWS = 2.0
"""Fewest rows a shared text must serve on average for the shared passes to be used."""


def splits_at_trigger(encs: Sequence[Encoded]) -> bool:
    """Whether every row has text before its first trigger slot (and the shared passes are on)."""
    return bool(encs) and prefix_cache_enabled() and all(e.triggers and e.triggers[0] >= 1 for e in encs)


def shared_groups(encs: Sequence[Encoded]) -> list[list[int]] | None:
    """Rows grouped by their tokens before the first trigger slot, or None when there is nothing to share (a row
    without trigger slots, nothing before them, or fewer than :data:`MIN_SHARED_ROWS` rows a text on average)."""
    if not splits_at_trigger(encs):
        return None
    groups: dict[tuple[int, ...], list[int]] = {}
    for i, e in enumerate(encs):
        groups.setdefault(e.ids[: e.triggers[0]], []).append(i)
    if len(encs) < MIN_SHARED_ROWS * len(groups):
        return None
    return list(groups.values())


def _batches(groups: list[list[int]], max_rows: int) -> list[list[list[int]]]:
    """Groups packed into passes of at most ``max_rows`` rows (a larger group split over several)."""
    pieces = [g[k : k + max_rows] for g in groups for k in range(0, len(g), max_rows)]
    batches: list[list[list[int]]] = []
    for piece in pieces:
        if not batches or sum(map(len, batches[-1])) + len(piece) > max_rows:
            batches.append([])
        batches[-1].append(piece)
    return batches


def _left_padded(rows: Sequence[Sequence[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    import torch

    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, r in enumerate(rows):
        ids[i, width - len(r) :], mask[i, width - len(r) :] = torch.tensor(list(r), dtype=torch.long), 1
    return ids, mask


def _head_pass(cloze: ClozeModel, heads: Sequence[Sequence[int]]) -> tuple[Any, torch.Tensor]:
    """The key/value cache of the texts before the trigger slots (left-padded, no gradient) and its mask."""
    import torch

    head_ids, head_mask = _left_padded(heads, cloze.pad_id)
    head_ids, head_mask = head_ids.to(cloze.device), head_mask.to(cloze.device)
    last = torch.full((len(heads),), head_ids.shape[1] - 1, dtype=torch.long, device=cloze.device)
    with torch.no_grad(), cloze._only_predict(last):  # (the LM head's output here is not used)
        first = cloze.model(input_ids=head_ids, attention_mask=head_mask, use_cache=True,
                            position_ids=(head_mask.cumsum(-1) - 1).clamp(min=0))
    return output_cache(first), head_mask


def _tail_pass(cloze: ClozeModel, cache: Any, head_mask: torch.Tensor, tail_mask: torch.Tensor,
               **inputs: torch.Tensor) -> torch.Tensor:
    """Log-softmax at the last position of the left-padded tails (``input_ids`` or ``inputs_embeds``), each
    continuing its row of ``cache``."""
    import torch

    mask = torch.cat([head_mask, tail_mask.to(cloze.device)], dim=1)
    positions = (mask.cumsum(-1) - 1).clamp(min=0)[:, head_mask.shape[1] :]
    last = torch.full((len(mask),), tail_mask.shape[1] - 1, dtype=torch.long, device=cloze.device)
    with cloze._only_predict(last):
        logits = cloze.model(attention_mask=mask, position_ids=positions, use_cache=True,
                             **{cache_kwarg(cloze.model): cache}, **inputs).logits
    return torch.log_softmax(logits[:, 0, :].float(), dim=-1)


def shared_logprobs(cloze: ClozeModel, encs: Sequence[Encoded], groups: list[list[int]]) -> torch.Tensor:
    """Log-softmax over the vocabulary at each row's prediction slot (no gradient), each group's shared text run
    once: what :meth:`ClozeModel.logprobs` returns, for a causal LM.

    Args:
        cloze: the causal cloze model.
        encs: the rows.
        groups: :func:`shared_groups` of ``encs``.
    """
    import torch

    out = [torch.empty(0)] * len(encs)
    for batch in _batches(groups, cloze.max_rows):
        heads = [encs[g[0]].ids[: encs[g[0]].triggers[0]] for g in batch]
        owner = [k for k, g in enumerate(batch) for _ in g]
        rows = [i for g in batch for i in g]
        tails = [encs[i].ids[len(heads[k]) : encs[i].predict + 1] for i, k in zip(rows, owner)]
        tail_ids, tail_mask = _left_padded(tails, cloze.pad_id)
        index = torch.tensor(owner, dtype=torch.long, device=cloze.device)
        with cloze.passes(len(rows), sum(map(len, heads)) + sum(map(len, tails))), cloze._locked(), \
                torch.no_grad():
            cache, head_mask = _head_pass(cloze, heads)
            cache.batch_select_indices(index)  # each row gets its group's cache
            lp = _tail_pass(cloze, cache, head_mask[index], tail_mask, input_ids=tail_ids.to(cloze.device))
        cloze.forward_rows += len(rows)
        for i, row in zip(rows, lp):
            out[i] = row
    return torch.stack(out)


def shared_gradient(cloze: ClozeModel, encs: Sequence[Encoded], trigger: Sequence[int],
                    loss_fn: Callable[[torch.Tensor], torch.Tensor]) -> tuple[torch.Tensor, float]:
    """:meth:`ClozeModel.trigger_gradient` for a causal LM whose rows have text before the trigger slots: that
    text runs without gradient (it does not depend on the trigger), and the backward pass goes through the
    trigger and what follows it only."""
    import torch

    n = len(encs)
    heads = [e.ids[: e.triggers[0]] for e in encs]
    tails = [e.ids[e.triggers[0] : e.predict + 1] for e in encs]
    tail_ids, tail_mask = _left_padded(tails, cloze.pad_id)
    width = tail_ids.shape[1]
    cols = torch.tensor([[t - e.triggers[0] + width - len(tail) for t in e.triggers] for e, tail in zip(encs, tails)],
                        device=cloze.device)
    rows = torch.arange(n, device=cloze.device)[:, None].expand(n, len(trigger))
    with cloze.passes(2 * n, sum(map(len, heads)) + 2 * sum(map(len, tails))), cloze._locked():
        cache, head_mask = _head_pass(cloze, heads)
        trig = cloze.embeddings.weight[torch.tensor(list(trigger), device=cloze.device)].detach().clone()
        trig.requires_grad_(True)
        embeds = cloze.embeddings(tail_ids.to(cloze.device)).detach()
        embeds = embeds.index_put((rows.reshape(-1), cols.reshape(-1)), trig.repeat(n, 1))
        loss = loss_fn(_tail_pass(cloze, cache, head_mask, tail_mask, inputs_embeds=embeds))
        (grad,) = torch.autograd.grad(loss, trig)
    cloze.forward_rows += n
    cloze.backward_rows += n
    return grad.detach(), float(loss.detach())
